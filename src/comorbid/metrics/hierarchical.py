"""Metrics that know the ICD tree: the tree cost of errors and hierarchical F1.

Both read the hierarchy as a :class:`comorbid.icd.LabelHierarchy`
(:func:`comorbid.icd.expand_with_ancestors`): ``Anc(j)``, the set of label ``j`` and its
ancestors up to its chapter (the synthetic root left out), is row ``j`` of its ``matrix``.

- :func:`tree_cost`: the mean per-row cost that the ``mbr=icd-tree`` decoder minimises
  (:class:`comorbid.decoders.costs.IcdTreeCost`), so that decoder and metric agree.
- :func:`hierarchical_f1` (and :func:`hierarchical_precision`, :func:`hierarchical_recall`):
  micro-averaged F1 of the ancestor-augmented sets (Kiritchenko, Matwin, Nock & Famili, 2006,
  "Learning and evaluation in the presence of class hierarchies: application to text
  categorization", Canadian AI; Kosmopoulos, Partalas, Gaussier, Paliouras & Androutsopoulos,
  2015, "Evaluation measures for hierarchical classification: a unified view and novel
  approaches", Data Mining and Knowledge Discovery 29).

Tree distances come from the ancestor sets: in a tree, the path from ``a`` to ``b`` climbs
from ``a`` to their lowest common ancestor and back down, so
``d(a, b) = |Anc(a)| + |Anc(b)| - 2 |Anc(a) & Anc(b)| = |Anc(a) xor Anc(b)|``, which equals
:func:`comorbid.icd.tree_distance`. Distances are computed only for the pairs a row needs
(its predicted codes against its true codes), never as an ``[M, M]`` matrix.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from comorbid.icd import LabelHierarchy, expand_with_ancestors
from comorbid.metrics._inputs import validate_and_format_pair, validate_zero_division

#: Pairs of codes whose distance is computed at once (caps the ``[pairs, D, D]`` comparison).
_CHUNK_PAIRS = 1 << 16


# ---------------------------------------------------------------------------------- helpers
def label_hierarchy(label_names: Sequence[str] | LabelHierarchy, n_labels: int,
                    system: str | None = None) -> LabelHierarchy:
    """``label_names`` as a :class:`LabelHierarchy` of ``n_labels`` labels (built once, reusable).

    Raises:
        ValueError: when the names are not ICD codes of one system, are duplicates, or are not
            one per column.
    """
    hierarchy = label_names if isinstance(label_names, LabelHierarchy) else expand_with_ancestors(
        [str(name) for name in label_names], system)
    if hierarchy.n_original != n_labels:
        raise ValueError(
            f"Expected `label_names` to name each of the {n_labels} label columns, got {hierarchy.n_original} names"
        )
    return hierarchy


def _ancestor_table(hierarchy: LabelHierarchy) -> tuple[np.ndarray, np.ndarray]:
    """``table [M, D]``: the ids (columns of ``hierarchy.matrix``) of each ``Anc(j)``, padded
    with -1; ``sizes [M]``: ``|Anc(j)|``."""
    matrix = sp.csr_matrix(hierarchy.matrix, dtype=bool)
    sizes = np.diff(matrix.indptr).astype(np.int64)
    table = np.full((matrix.shape[0], max(int(sizes.max(initial=0)), 1)), -1, dtype=np.int64)
    rows = np.repeat(np.arange(matrix.shape[0]), sizes)
    table[rows, np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], sizes)] = matrix.indices
    return table, sizes


def _distances(table: np.ndarray, sizes: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[P]`` tree distances ``|Anc(a_p) xor Anc(b_p)|`` (edges) for label index pairs."""
    out = np.empty(len(a), dtype=np.int64)
    for start in range(0, len(a), _CHUNK_PAIRS):
        left, right = table[a[start : start + _CHUNK_PAIRS]], table[b[start : start + _CHUNK_PAIRS]]
        # ids are distinct within a row, so each match is one shared ancestor; -1 pads the
        # left side and -2 the right, so padding never matches
        right = np.where(right < 0, -2, right)
        shared = (left[:, :, None] == right[:, None, :]).sum(axis=(1, 2))
        out[start : start + _CHUNK_PAIRS] = sizes[a[start : start + _CHUNK_PAIRS]] + sizes[b[start : start + _CHUNK_PAIRS]] - 2 * shared
    return out


def _diameter(table: np.ndarray, sizes: np.ndarray) -> int:
    """``max_{a, b} d(a, b)`` over the labels by a double sweep (Handler, 1973, "Minimax location
    of a facility in an undirected tree graph", Transportation Science 7): ``u`` farthest from
    any label ``v`` is an end of a longest path. It holds for any subset of a tree's nodes: for a
    longest pair ``(x, y)`` the four-point condition gives ``d(x, y) + d(v, u) <= d(x, v) +
    d(y, u)`` (or the same with ``x, y`` swapped) and ``d(x, v) <= d(v, u)``, so ``d(x, y) <=
    d(y, u)``. Two sweeps of ``M`` distances replace the ``M^2`` of :func:`comorbid.icd.cost_matrix`."""
    everyone = np.arange(len(sizes))
    far = int(np.argmax(_distances(table, sizes, np.zeros_like(everyone), everyone)))
    return int(_distances(table, sizes, np.full_like(everyone, far), everyone).max())


def _as_csr(matrix) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix, dtype=np.int8)
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix


# ---------------------------------------------------------------------------------- compute
def _tree_cost_compute(y_true, y_pred, hierarchy: LabelHierarchy) -> float:
    true, pred = _as_csr(y_true), _as_csr(y_pred)
    table, sizes = _ancestor_table(hierarchy)
    scale = max(_diameter(table, sizes), 1)  # the decoder's matrix / its max; all-zero stays zero
    empty_cost = 1.0  # the decoder's default: the largest entry of the normalised matrix (or 1)
    # every (predicted entry, true entry) pair of the same row, pairs of one predicted entry together
    pred_rows = np.repeat(np.arange(pred.shape[0]), np.diff(pred.indptr))
    true_sizes = np.diff(true.indptr)[pred_rows]
    pair_pred = np.repeat(np.arange(pred.nnz), true_sizes)
    block_starts = np.repeat(np.cumsum(true_sizes) - true_sizes, true_sizes)
    pair_true = true.indptr[pred_rows[pair_pred]] + np.arange(len(pair_pred)) - block_starts
    cost = _distances(table, sizes, pred.indices[pair_pred], true.indices[pair_true]) / scale
    pred_pays = np.full(pred.nnz, np.inf)
    np.minimum.at(pred_pays, pair_pred, cost)
    true_pays = np.full(true.nnz, np.inf)
    np.minimum.at(true_pays, pair_true, cost)
    total = np.where(np.isinf(pred_pays), empty_cost, pred_pays).sum() + np.where(
        np.isinf(true_pays), empty_cost, true_pays).sum()
    return float(total / true.shape[0])


def _hierarchical_counts(y_true, y_pred, hierarchy: LabelHierarchy) -> tuple[int, int, int]:
    """``TP, FP, FN`` pooled over rows of the ancestor-augmented sets."""
    ancestors = sp.csr_matrix(hierarchy.matrix, dtype=np.int64)
    true = (_as_csr(y_true).astype(np.int64) @ ancestors) > 0
    pred = (_as_csr(y_pred).astype(np.int64) @ ancestors) > 0
    tp = int(true.multiply(pred).sum())
    return tp, int(pred.sum()) - tp, int(true.sum()) - tp


def _ratio(numerator: int, denominator: int, zero_division: float) -> float:
    return float(numerator / denominator) if denominator else zero_division


def _hierarchical_f1_compute(y_true, y_pred, hierarchy: LabelHierarchy, zero_division: float = 0.0) -> float:
    tp, fp, fn = _hierarchical_counts(y_true, y_pred, hierarchy)
    return _ratio(2 * tp, 2 * tp + fp + fn, zero_division)


# ---------------------------------------------------------------------------------- public
def tree_cost(y_true: Any, y_pred: Any, label_names: Sequence[str] | LabelHierarchy,
              system: str | None = None) -> float:
    """Mean ICD-tree cost of the predicted sets: what the ``mbr=icd-tree`` decoder minimises.

    With ``C[a, b] = d(a, b) / max_{a', b'} d(a', b')`` the tree distance
    (:func:`comorbid.icd.tree_distance`) normalised by the largest one among the ``M`` labels
    (the matrix of :func:`comorbid.icd.cost_matrix`), each row pays the symmetric
    nearest-neighbour set cost of :class:`comorbid.decoders.costs.MatrixCost`::

        cost(P, Y) = sum_{a in P} min_{b in Y} C[a, b]  +  sum_{b in Y} min_{a in P} C[a, b]
        tree_cost  = 1/N sum_i cost(P_i, Y_i)

    each predicted code pays its distance to the nearest true code and each true code its
    distance to the nearest predicted one; against an empty set every code of the other set
    pays 1 (the largest cost), and two empty sets cost 0. A sibling (distance 2) of a true code
    costs ``2 * 2 / max d`` instead of the 2 of a miss plus a wrong code; with a flat hierarchy
    (all labels under the root) it is ``|P_i xor Y_i|``, i.e. ``M * hamming_loss``. Lower is
    better. ``mbr=icd-tree`` (:class:`comorbid.decoders.costs.IcdTreeCost`) picks the set of
    least expected ``cost`` under the model, so on average it gives the least ``tree_cost``.

    Args:
        y_true: ``[N, M]`` 0/1 true labels (numpy, list, scipy.sparse or torch).
        y_pred: ``[N, M]`` 0/1 predicted labels.
        label_names: ``[M]`` ICD codes of the columns, or a :class:`comorbid.icd.LabelHierarchy`
            of them (:func:`comorbid.icd.expand_with_ancestors`; build it once for many calls).
        system: ``"icd9"``/``"icd10"``, or ``None`` to detect it.

    Returns:
        A float >= 0 (0 is perfect).

    Raises:
        ValueError: for bad label matrices, or names that are not one ICD code per column.

    Example:
        >>> # d(786.2, 786.07) = 3, d(786.2, 486) = 7, d(786.07, 486) = 8 = max
        >>> tree_cost([[1, 0, 0], [0, 0, 1]], [[0, 1, 0], [0, 0, 1]], ["786.2", "786.07", "486"])
        0.375
    """
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    hierarchy = label_hierarchy(label_names, y_true.shape[1], system)
    return _tree_cost_compute(y_true, y_pred, hierarchy)


def hierarchical_precision(y_true: Any, y_pred: Any, label_names: Sequence[str] | LabelHierarchy,
                           system: str | None = None, zero_division: float = 0.0) -> float:
    """``hP = sum_i |P^_i & Y^_i| / sum_i |P^_i|`` over ancestor-augmented sets (see
    :func:`hierarchical_f1`); ``zero_division`` when nothing is predicted."""
    zero_division = validate_zero_division(zero_division)
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    tp, fp, _ = _hierarchical_counts(y_true, y_pred, label_hierarchy(label_names, y_true.shape[1], system))
    return _ratio(tp, tp + fp, zero_division)


def hierarchical_recall(y_true: Any, y_pred: Any, label_names: Sequence[str] | LabelHierarchy,
                        system: str | None = None, zero_division: float = 0.0) -> float:
    """``hR = sum_i |P^_i & Y^_i| / sum_i |Y^_i|`` over ancestor-augmented sets (see
    :func:`hierarchical_f1`); ``zero_division`` when nothing is true."""
    zero_division = validate_zero_division(zero_division)
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    tp, _, fn = _hierarchical_counts(y_true, y_pred, label_hierarchy(label_names, y_true.shape[1], system))
    return _ratio(tp, tp + fn, zero_division)


def hierarchical_f1(y_true: Any, y_pred: Any, label_names: Sequence[str] | LabelHierarchy,
                    system: str | None = None, zero_division: float = 0.0) -> float:
    """Micro-averaged F1 of the label sets augmented with their ancestors (hF).

    ``Y^_i = union_{j in Y_i} Anc(j)`` and ``P^_i = union_{j in P_i} Anc(j)``, where ``Anc(j)``
    is code ``j`` and its ancestors up to its chapter (:func:`comorbid.icd.ancestors`; the
    synthetic root left out, since every set would share it)::

        hP = sum_i |P^_i & Y^_i| / sum_i |P^_i|      hR = sum_i |P^_i & Y^_i| / sum_i |Y^_i|
        hF = 2 hP hR / (hP + hR) = 2 TP / (2 TP + FP + FN)  on the augmented sets

    i.e. ``sklearn.metrics.f1_score(average='micro')`` of the augmented indicator matrices
    (Kiritchenko et al., 2006; Kosmopoulos et al., 2015, "set-based measures" with all
    ancestors). A wrong code near the true one shares its ancestors and earns partial credit;
    with a flat hierarchy (``Anc(j) = {j}``) hF is :func:`comorbid.metrics.micro_f1`.

    Args:
        y_true: ``[N, M]`` 0/1 true labels (numpy, list, scipy.sparse or torch).
        y_pred: ``[N, M]`` 0/1 predicted labels.
        label_names: ``[M]`` ICD codes of the columns, or a :class:`comorbid.icd.LabelHierarchy`.
        system: ``"icd9"``/``"icd10"``, or ``None`` to detect it.
        zero_division: the value when both augmented matrices are empty: 0.0 (default, as
            :func:`comorbid.metrics.micro_f1`), 1.0 or ``nan``.

    Returns:
        A float in [0, 1], or nan.

    Example:
        >>> # Anc(786.2) = {786.2, 786, 780-789, 780-799}, Anc(786.07) = {786.07, 786.0, 786, 780-789, 780-799}
        >>> round(hierarchical_f1([[1, 0]], [[0, 1]], ["786.2", "786.07"]), 4)  # 2 * 3 / (4 + 5)
        0.6667
    """
    zero_division = validate_zero_division(zero_division)
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    hierarchy = label_hierarchy(label_names, y_true.shape[1], system)
    return _hierarchical_f1_compute(y_true, y_pred, hierarchy, zero_division)
