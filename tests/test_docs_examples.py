"""The Python examples of README.md and docs/training.md run and print what their comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)


def promised_output(block: str) -> list[str]:
    """What the block's ``print(...)  # VALUE`` lines say they print (the text before any ':')."""
    return [re.split(r":\s", line.split("#", 1)[1].strip())[0]
            for line in block.splitlines() if line.startswith("print(") and "#" in line]


@pytest.mark.parametrize("page", ["README.md", "docs/training.md"])
def test_python_examples_print_what_they_promise(page):
    blocks = python_blocks(ROOT / page)
    assert blocks, f"{page} has no python example"
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, page, "exec"), {})
        assert out.getvalue().split("\n")[:-1] == promised_output(block)
