"""docs/pytorch.md: its example (a comorbid head on a plain nn.Module, trained in a plain PyTorch
loop, decoded with a decoder) runs and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch
from test_docs_examples import promised_output, python_blocks

PAGE = Path(__file__).resolve().parents[1] / "docs" / "pytorch.md"


def test_pytorch_example_runs_and_prints_what_it_promises():
    blocks = python_blocks(PAGE)
    assert len(blocks) == 1, "docs/pytorch.md should hold exactly one python example"
    block = blocks[0]
    assert len([line for line in block.splitlines() if line.strip()]) <= 35  # short enough to read at once
    out = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(PAGE), "exec"), namespace)
    assert out.getvalue().split("\n")[:-1] == promised_output(block)
    # it trained: the chain learned that label 3 is the AND of labels 0 and 1
    x, y, encoder, head = namespace["x"], namespace["y"], namespace["encoder"], namespace["head"]
    with torch.no_grad():
        marginals = head.distribution(encoder(x)).marginals()
    assert ((marginals > 0.5).float() == y).float().mean() > 0.9
