"""Metrics of label scores: ``f(y_true [N, M] 0/1, y_score [N, M] float) -> float``.

Higher scores mean "more likely relevant"; only the order of scores within a row matters.

``ranking_loss``, ``coverage`` and ``label_ranking_average_precision`` are scikit-learn's
``label_ranking_loss``, ``coverage_error`` and ``label_ranking_average_precision_score``
(called here; Pedregosa et al., 2011, JMLR 12), which follow Schapire & Singer (2000,
"BoosTexter: A boosting-based system for text categorization", Machine Learning 39).

``precision_at_k`` and ``recall_at_k`` are the ICD-coding metrics of Mullenbach et al. (2018,
"Explainable prediction of medical codes from clinical text", NAACL) and of extreme
multi-label classification. scikit-learn has no multi-label precision@k
(``top_k_accuracy_score`` is for one true class per row), so they are written here, with the
tie-breaking rule stated: among equal scores the lower column index ranks first.
``mean_average_precision`` is the MAP of the CodiEsp ICD-coding task (Miranda-Escalada et
al., 2020, "Overview of automatic clinical coding: annotations, guidelines, and solutions
for non-English clinical cases at CodiEsp track of CLEF eHealth 2020", CLEF Working Notes),
with the same tie rule; it is not scikit-learn's LRAP when a row has several true labels.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn import metrics as skm

from comorbid.metrics._inputs import (
    LabelMatrix,
    format_labels,
    validate_and_format_scores,
    validate_k,
    validate_labels,
)

#: Top-k rankings are computed on row blocks of about this many scores (bounds memory).
_BLOCK_ENTRIES = 1 << 22


# ---------------------------------------------------------------------------------- steps
def _validate_and_format(y_true: Any, y_score: Any, *, allow_infinite: bool) -> tuple[LabelMatrix, np.ndarray]:
    labels = validate_labels("y_true", y_true)
    labels = format_labels(labels, sparse=sp.issparse(labels))
    scores = validate_and_format_scores(y_score, labels, allow_infinite=allow_infinite)
    return labels, scores


def _dense(y_true: LabelMatrix) -> np.ndarray:
    return y_true.toarray() if sp.issparse(y_true) else y_true


def _ranking_loss_compute(y_true: LabelMatrix, y_score: np.ndarray) -> float:
    if y_true.shape[1] == 1:
        # scikit-learn refuses a single column. With one label every row is either all
        # relevant or all irrelevant, and such rows have no pair to misorder: loss 0.
        return 0.0
    return float(skm.label_ranking_loss(y_true, y_score))


def _coverage_compute(y_true: LabelMatrix, y_score: np.ndarray) -> float:
    if y_true.shape[1] == 1:
        # scikit-learn refuses a single column. The only label has rank 1: coverage is 1 for
        # a row where it is true and 0 (scikit-learn's value for an empty truth) otherwise.
        return float(_dense(y_true)[:, 0].mean())
    return float(skm.coverage_error(_dense(y_true), y_score))


def _label_ranking_average_precision_compute(y_true: LabelMatrix, y_score: np.ndarray) -> float:
    return float(skm.label_ranking_average_precision_score(y_true, y_score))


def _top_k_hits(y_true: LabelMatrix, y_score: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """``[len(ks), N]``: number of true labels among each row's ``k`` best-scored labels.

    One sort serves every ``k``. A stable sort of the negated scores puts, among equal scores,
    the lower column index first (``np.argpartition`` would be faster for k << M but orders
    ties arbitrarily). If ``k > M`` the top-k set is all ``M`` labels.
    """
    n_rows, n_labels = y_score.shape
    deepest = min(max(ks), n_labels)
    columns = [min(k, n_labels) - 1 for k in ks]
    block = max(1, _BLOCK_ENTRIES // n_labels)
    hits = np.empty((len(ks), n_rows), dtype=np.int64)
    for start in range(0, n_rows, block):
        stop = min(start + block, n_rows)
        top = np.argsort(-y_score[start:stop], axis=1, kind="stable")[:, :deepest]
        found = np.take_along_axis(_dense(y_true[start:stop]), top, axis=1).cumsum(axis=1, dtype=np.int64)
        hits[:, start:stop] = found[:, columns].T
    return hits


def _average_precisions(y_true: LabelMatrix, y_score: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``[N]``: each row's average precision, ``sum_{j in Y_i} precision@rank_i(j) / sizes_i``.

    ``sizes`` ``[N]`` are the rows' numbers of true labels, at least the row sums: true labels
    outside the columns (never ranked) count in the denominator only. Rows with size 0 get 0.
    Ranks come from a stable sort of the negated scores (ties: lower column index first),
    computed on row blocks of about ``_BLOCK_ENTRIES`` scores.
    """
    n_rows, n_labels = y_score.shape
    block = max(1, _BLOCK_ENTRIES // n_labels)
    ranks = np.arange(1, n_labels + 1, dtype=np.float64)
    sums = np.empty(n_rows, dtype=np.float64)
    for start in range(0, n_rows, block):
        stop = min(start + block, n_rows)
        order = np.argsort(-y_score[start:stop], axis=1, kind="stable")
        relevant = np.take_along_axis(_dense(y_true[start:stop]), order, axis=1)
        hits = relevant.cumsum(axis=1, dtype=np.int64)
        sums[start:stop] = (relevant * (hits / ranks)).sum(axis=1)
    return np.divide(sums, sizes, out=np.zeros(n_rows), where=sizes > 0)


def _row_sizes(y_true: LabelMatrix, n_unranked: np.ndarray | None) -> np.ndarray:
    """``[N]`` true labels per row: those in the columns plus ``n_unranked`` (never ranked)."""
    sizes = np.asarray(y_true.sum(axis=1)).ravel().astype(np.int64)
    return sizes if n_unranked is None else sizes + n_unranked


def _mean_average_precision_compute(y_true: LabelMatrix, y_score: np.ndarray,
                                    n_unranked: np.ndarray | None = None) -> float:
    """MAP over rows with a true label (``n_unranked``: see :func:`_recall_at_k_compute`)."""
    sizes = _row_sizes(y_true, n_unranked)
    has_truth = sizes > 0
    if not has_truth.any():
        return 0.0
    rows = np.flatnonzero(has_truth)
    return float(np.mean(_average_precisions(y_true[rows], y_score[rows], sizes[rows])))


def _precision_at_k_compute(y_true: LabelMatrix, y_score: np.ndarray, ks: Sequence[int]) -> list[float]:
    """precision@k for each ``k`` in ``ks``."""
    hits = _top_k_hits(y_true, y_score, ks)
    return [float(np.mean(row / k)) for row, k in zip(hits, ks)]


def _recall_at_k_compute(y_true: LabelMatrix, y_score: np.ndarray, ks: Sequence[int],
                         n_unranked: np.ndarray | None = None) -> list[float]:
    """recall@k for each ``k`` in ``ks``; rows without a true label are left out.

    ``n_unranked`` ``[N]``: true labels per row that are not among the columns (e.g. codes a
    model does not know): they are never in the top k, so they only lower recall.
    """
    sizes = _row_sizes(y_true, n_unranked)
    has_truth = sizes > 0
    if not has_truth.any():
        return [0.0 for _ in ks]
    hits = _top_k_hits(y_true[np.flatnonzero(has_truth)], y_score[has_truth], ks)
    return [float(np.mean(row / sizes[has_truth])) for row in hits]


# ---------------------------------------------------------------------------------- public
def ranking_loss(y_true: Any, y_score: Any) -> float:
    """Mean fraction of (relevant, irrelevant) label pairs that the scores misorder.

    ``ranking_loss = 1/N sum_i |{(j, l): y_ij = 1, y_il = 0, s_ij <= s_il}| / (|Y_i| (M - |Y_i|))``;
    ties count as misordered, and rows with no relevant or no irrelevant label contribute 0.
    Exactly ``sklearn.metrics.label_ranking_loss``.

    Args:
        y_true: ``[N, M]`` 0/1 true labels.
        y_score: ``[N, M]`` finite scores.

    Returns:
        A float in [0, 1] (0 is perfect).
    """
    y_true, y_score = _validate_and_format(y_true, y_score, allow_infinite=False)
    return _ranking_loss_compute(y_true, y_score)


def coverage(y_true: Any, y_score: Any) -> float:
    """How far down the ranking one must go, on average, to cover every true label.

    ``coverage = 1/N sum_i max_{j: y_ij = 1} |{l: s_il >= s_ij}|`` (ties count against;
    0 for a row with no true label). Exactly ``sklearn.metrics.coverage_error``, which is
    the coverage of Schapire & Singer (2000) plus one: the best value is the mean number of
    true labels, not that minus one.

    Args:
        y_true: ``[N, M]`` 0/1 true labels.
        y_score: ``[N, M]`` finite scores.

    Returns:
        A float in [0, M] (lower is better).
    """
    y_true, y_score = _validate_and_format(y_true, y_score, allow_infinite=False)
    return _coverage_compute(y_true, y_score)


def label_ranking_average_precision(y_true: Any, y_score: Any) -> float:
    """Label ranking average precision (LRAP).

    ``LRAP = 1/N sum_i 1/|Y_i| sum_{j in Y_i} |{l in Y_i: s_il >= s_ij}| / |{l: s_il >= s_ij}|``;
    a row with no true label or only true labels scores 1. Exactly
    ``sklearn.metrics.label_ranking_average_precision_score``.

    Args:
        y_true: ``[N, M]`` 0/1 true labels.
        y_score: ``[N, M]`` finite scores.

    Returns:
        A float in (0, 1] (1 is perfect).
    """
    y_true, y_score = _validate_and_format(y_true, y_score, allow_infinite=False)
    return _label_ranking_average_precision_compute(y_true, y_score)


def precision_at_k(y_true: Any, y_score: Any, k: int) -> float:
    """Mean over rows of the fraction of the ``k`` best-scored labels that are true.

    ``precision@k = 1/N sum_i |top_k(s_i) & Y_i| / k``. Ties: among equal scores the lower
    column index ranks first. If ``k > M`` the top-k set is all ``M`` labels and the
    denominator stays ``k`` (so precision@k <= M / k). Rows with no true label count, as 0.

    Args:
        y_true: ``[N, M]`` 0/1 true labels.
        y_score: ``[N, M]`` scores; +-inf allowed, NaN not.
        k: how many labels each row predicts, ``>= 1``.

    Returns:
        A float in [0, 1].

    Example:
        >>> y_true = [[1, 0, 0], [0, 1, 1]]
        >>> y_score = [[0.5, 0.5, 0.1], [0.9, 0.2, 0.2]]
        >>> precision_at_k(y_true, y_score, k=1)  # row 0: the tie goes to column 0, a hit
        0.5
    """
    k = validate_k(k)
    y_true, y_score = _validate_and_format(y_true, y_score, allow_infinite=True)
    return _precision_at_k_compute(y_true, y_score, [k])[0]


def recall_at_k(y_true: Any, y_score: Any, k: int) -> float:
    """Mean over rows with a true label of the fraction of true labels in the top ``k``.

    ``recall@k = 1/|R| sum_{i in R} |top_k(s_i) & Y_i| / |Y_i|`` with ``R = {i: |Y_i| > 0}``:
    rows with no true label have no recall and are left out of the mean; if every row is
    empty the result is 0.0. (CAML's evaluation code counts such rows as 0 instead.) Ties
    are broken as in :func:`precision_at_k`, lower column index first.

    Args:
        y_true: ``[N, M]`` 0/1 true labels.
        y_score: ``[N, M]`` scores; +-inf allowed, NaN not.
        k: how many labels each row predicts, ``>= 1``.

    Returns:
        A float in [0, 1].

    Example:
        >>> y_true = [[1, 0, 0], [0, 1, 1], [0, 0, 0]]
        >>> y_score = [[0.5, 0.5, 0.1], [0.9, 0.2, 0.2], [0.1, 0.2, 0.3]]
        >>> recall_at_k(y_true, y_score, k=2)  # (1/1 + 1/2) / 2; the empty row is left out
        0.75
    """
    k = validate_k(k)
    y_true, y_score = _validate_and_format(y_true, y_score, allow_infinite=True)
    return _recall_at_k_compute(y_true, y_score, [k])[0]


def mean_average_precision(y_true: Any, y_score: Any) -> float:
    """Mean over rows with a true label of the average precision of the row's ranking.

    ``MAP = 1/|R| sum_{i in R} 1/|Y_i| sum_{j in Y_i} |{l in Y_i: r_il <= r_ij}| / r_ij`` with
    ``r_ij`` the rank (1 = best) of label ``j`` when row ``i``'s labels are sorted by
    decreasing score, ties to the lower column index, and ``R = {i: |Y_i| > 0}``: rows with
    no true label have no average precision and are left out of the mean (0.0 if every row
    is empty). This is CodiEsp's MAP, and per row it is
    ``sklearn.metrics.average_precision_score`` when the row's scores have no ties (that
    function groups tied scores into one threshold instead). It differs from
    :func:`label_ranking_average_precision`, which ranks each true label among all labels
    scored at least as high, counting ties against, and scores empty rows 1.

    Args:
        y_true: ``[N, M]`` 0/1 true labels (dense or ``scipy.sparse``).
        y_score: ``[N, M]`` scores; +-inf allowed, NaN not.

    Returns:
        A float in [0, 1] (1 is perfect).

    Example:
        >>> y_true = [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
        >>> y_score = [[0.9, 0.8, 0.1], [0.5, 0.5, 0.5], [0.3, 0.3, 0.2]]
        >>> round(mean_average_precision(y_true, y_score), 4)  # ((1 + 2/3) / 2 + 1/2) / 2; row 1 left out
        0.6667
    """
    y_true, y_score = _validate_and_format(y_true, y_score, allow_infinite=True)
    return _mean_average_precision_compute(y_true, y_score)
