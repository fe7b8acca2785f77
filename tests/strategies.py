"""Hypothesis strategies shared by every test file (``from strategies import ...``).

Label matrices are ``[N, M]`` ``np.int8`` of 0/1 with small ``N`` and ``M`` so that tests may
brute-force all ``2^M`` label sets. They deliberately include the corner cases that metrics get
wrong: all-zero rows (an example with no label), all-one rows, all-zero columns (a label never
seen) and entirely zero matrices; Hypothesis shrinks towards those.

Use :data:`DETERMINISTIC` (or ``settings(DETERMINISTIC, max_examples=...)``) on every
``@given`` test so that CI draws the same examples on every run.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

#: Settings for every property test: derandomized (same examples each run), no deadline
#: (a loaded 2-core CI machine makes timings meaningless), few examples (runs in seconds).
DETERMINISTIC = settings(
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

MAX_ROWS = 8
MAX_LABELS = 6

#: Scores with many ties (a small grid) mixed with arbitrary finite floats.
TIED_SCORES = (0.0, 0.25, 0.5, 0.75, 1.0)

#: Containers every metric must accept for a label or score matrix; see :func:`to_container`.
CONTAINERS = ("numpy", "list", "sparse", "torch")


class Problem(NamedTuple):
    """One multi-label evaluation problem: ``[N, M]`` each."""

    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray


def shapes(max_rows: int = MAX_ROWS, max_labels: int = MAX_LABELS, min_labels: int = 1):
    """``(N, M)`` with ``1 <= N <= max_rows`` and ``min_labels <= M <= max_labels``."""
    return st.tuples(st.integers(1, max_rows), st.integers(min_labels, max_labels))


@st.composite
def _with_empty_and_full(draw, matrix: np.ndarray) -> np.ndarray:
    """``matrix`` with some rows set to all ones, then some rows and columns set to zero."""
    n_rows, n_labels = matrix.shape
    matrix = matrix.copy()
    matrix[draw(_sometimes(n_rows))] = 1
    matrix[draw(_sometimes(n_rows))] = 0
    matrix[:, draw(_sometimes(n_labels))] = 0
    return matrix


def _sometimes(size: int):
    """``[size]`` booleans, each True with probability about 1/4 (shrinks to all False)."""
    return arrays(np.bool_, size, elements=st.sampled_from((False, False, False, True)), fill=st.nothing())


@st.composite
def label_matrices(
    draw, shape: tuple[int, int] | None = None, max_rows: int = MAX_ROWS, max_labels: int = MAX_LABELS, min_labels: int = 1
):
    """``[N, M]`` ``np.int8`` 0/1 matrices, with empty/full rows and empty columns.

    Every entry is drawn (``fill=st.nothing()``): Hypothesis would otherwise fill most of an
    array with one repeated value, and rows would rarely differ.

    Args:
        shape: a fixed ``(N, M)``; drawn from :func:`shapes` if None.
    """
    shape = draw(shapes(max_rows, max_labels, min_labels)) if shape is None else shape
    matrix = draw(arrays(np.int8, shape, elements=st.integers(0, 1), fill=st.nothing()))
    return draw(_with_empty_and_full(matrix))


@st.composite
def label_matrix_pairs(
    draw, shape: tuple[int, int] | None = None, max_rows: int = MAX_ROWS, max_labels: int = MAX_LABELS, min_labels: int = 1
):
    """``(y_true, y_pred)``, both ``[N, M]`` ``np.int8``.

    ``y_pred`` is ``y_true`` with a drawn set of entries flipped (so it shrinks towards a
    perfect prediction and exact matches are common), then with its own empty/full rows and
    empty columns (labels never predicted).
    """
    y_true = draw(label_matrices(shape, max_rows, max_labels, min_labels))
    flips = draw(arrays(np.int8, y_true.shape, elements=st.integers(0, 1), fill=st.nothing()))
    y_pred = draw(_with_empty_and_full(y_true ^ flips))
    return y_true, y_pred


def score_matrices(shape: tuple[int, int], ties: bool = True):
    """``[N, M]`` ``np.float64`` finite scores; with ``ties`` many values repeat in a row."""
    finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)
    elements = st.one_of(st.sampled_from(TIED_SCORES), finite) if ties else finite
    return arrays(np.float64, shape, elements=elements, unique=not ties, fill=st.nothing())


@st.composite
def problems(draw, max_rows: int = MAX_ROWS, max_labels: int = MAX_LABELS, min_labels: int = 1, ties: bool = True):
    """A :class:`Problem`: true labels, predicted labels and scores of one shape."""
    shape = draw(shapes(max_rows, max_labels, min_labels))
    y_true, y_pred = draw(label_matrix_pairs(shape))
    return Problem(y_true, y_pred, draw(score_matrices(shape, ties)))


def to_container(matrix: np.ndarray, kind: str):
    """``matrix`` as one of :data:`CONTAINERS`: numpy, nested list, scipy CSR, torch tensor."""
    if kind == "numpy":
        return matrix
    if kind == "list":
        return matrix.tolist()
    if kind == "sparse":
        return sp.csr_matrix(matrix)
    if kind == "torch":
        return torch.from_numpy(np.ascontiguousarray(matrix))
    raise ValueError(f"Expected a container in {CONTAINERS}, got {kind!r}")


#: Label probabilities with the corners decoders get wrong: certain labels, impossible ones, ties.
TIED_PROBABILITIES = (0.0, 0.1, 0.45, 0.5, 0.9, 1.0)


def marginal_vectors(min_labels: int = 1, max_labels: int = MAX_LABELS):
    """``[M]`` float64 label probabilities in [0, 1]: tied grid values mixed with arbitrary ones."""
    element = st.sampled_from(TIED_PROBABILITIES) | st.floats(0.0, 1.0, allow_nan=False)
    return st.integers(min_labels, max_labels).flatmap(
        lambda m: arrays(np.float64, m, elements=element, fill=st.nothing())
    )
