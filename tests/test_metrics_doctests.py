"""The examples in the docstrings of comorbid.metrics and in docs/metrics.md run and print what they say.

Equivalent command: ``pytest --doctest-modules src/comorbid/metrics`` (plus
``python -m doctest -o ELLIPSIS docs/metrics.md`` for the page).
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

MODULES = [
    "comorbid.metrics.sets",
    "comorbid.metrics.ranking",
    "comorbid.metrics.evaluate",
    "comorbid.metrics.utility",
    "comorbid.metrics.calibration",
]
DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS, verbose=False)
    assert result.attempted > 0, f"{name} has no doctest"
    assert result.failed == 0


def test_docs_page_example():
    result = doctest.testfile(str(DOCS_PAGE), module_relative=False, optionflags=FLAGS, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
