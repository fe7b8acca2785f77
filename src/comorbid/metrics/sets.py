"""Metrics of predicted label sets: ``f(y_true [N, M], y_pred [N, M]) -> float``.

Every function here equals a scikit-learn metric on multi-label indicator matrices and calls
it (Pedregosa et al., 2011, "Scikit-learn: Machine Learning in Python", JMLR 12); what this
module adds is input checking with clear errors, torch/list/sparse inputs, explicit
``zero_division`` conventions (so scikit-learn never warns) and the single-label-column case,
which scikit-learn would read as binary classification.

Notation: row ``i`` has true set ``Y_i`` and predicted set ``P_i`` over ``M`` labels;
``TP_j, FP_j, FN_j`` count, for label ``j``, rows with the label in both, only in ``P``, only
in ``Y``. The example-based (``instance``, ``'samples'``) measures follow Godbole & Sarawagi
(2004, "Discriminative methods for multi-labeled classification", PAKDD) and the survey of
Tsoumakas, Katakis & Vlahavas (2010, "Mining multi-label data", Data Mining and Knowledge
Discovery Handbook).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn import metrics as skm

from comorbid.metrics._inputs import LabelMatrix, validate_and_format_pair, validate_zero_division


# ---------------------------------------------------------------------------------- helpers
def _as_multilabel(y_true: LabelMatrix, y_pred: LabelMatrix) -> tuple[LabelMatrix, LabelMatrix, list[int]]:
    """Inputs scikit-learn reads as multi-label, and the label columns to average over.

    scikit-learn reads a single column ``[N, 1]`` as binary targets (where ``average='samples'``
    is refused and ``'micro'`` would average over classes 0 and 1). An all-zero second column
    turns it into a multi-label indicator matrix without changing any row's set, and
    ``labels=[0]`` keeps the extra column out of label-wise averages.
    """
    n_labels = y_true.shape[1]
    if n_labels == 1:
        if sp.issparse(y_true):
            pad = sp.csr_matrix((y_true.shape[0], 1), dtype=np.int8)
            y_true, y_pred = sp.hstack([y_true, pad], format="csr"), sp.hstack([y_pred, pad], format="csr")
        else:
            pad = np.zeros((y_true.shape[0], 1), dtype=np.int8)
            y_true, y_pred = np.hstack([y_true, pad]), np.hstack([y_pred, pad])
    return y_true, y_pred, list(range(n_labels))


# ---------------------------------------------------------------------------------- compute
def _subset_accuracy_compute(y_true: LabelMatrix, y_pred: LabelMatrix) -> float:
    y_true, y_pred, _ = _as_multilabel(y_true, y_pred)
    return float(skm.accuracy_score(y_true, y_pred))


def _hamming_loss_compute(y_true: LabelMatrix, y_pred: LabelMatrix) -> float:
    # No padding here: an extra column would change the denominator N * M. A single column
    # is passed as 1-D binary targets, for which hamming_loss is the same fraction.
    if y_true.shape[1] == 1:
        y_true = (y_true.toarray() if sp.issparse(y_true) else y_true).ravel()
        y_pred = (y_pred.toarray() if sp.issparse(y_pred) else y_pred).ravel()
    return float(skm.hamming_loss(y_true, y_pred))


def _label_average_compute(
    metric: str, average: str, y_true: LabelMatrix, y_pred: LabelMatrix, zero_division: float
) -> float:
    function = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}[metric]
    y_true, y_pred, labels = _as_multilabel(y_true, y_pred)
    return float(function(y_true, y_pred, labels=labels, average=average, zero_division=zero_division))


def _samples_compute(metric: str, y_true: LabelMatrix, y_pred: LabelMatrix) -> float:
    # zero_division=1.0: an empty prediction for an empty truth is a perfect answer, the same
    # convention as the per-row utilities that decoders maximise (comorbid.metrics.utility).
    function = {"f1": skm.f1_score, "jaccard": skm.jaccard_score}[metric]
    y_true, y_pred, _ = _as_multilabel(y_true, y_pred)
    return float(function(y_true, y_pred, average="samples", zero_division=1.0))


# ---------------------------------------------------------------------------------- public
def subset_accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of rows whose predicted set is exactly the true set (exact match ratio).

    ``subset_accuracy = 1/N sum_i 1[P_i = Y_i]``; ``sklearn.metrics.accuracy_score`` on
    indicator matrices. Two empty sets are equal.

    Args:
        y_true: ``[N, M]`` 0/1 true labels (numpy, list, scipy.sparse or torch).
        y_pred: ``[N, M]`` 0/1 predicted labels.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: if the shapes differ or a value is not 0/1.

    Example:
        >>> subset_accuracy([[1, 0, 1], [0, 1, 0]], [[1, 0, 1], [0, 0, 0]])
        0.5
    """
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    return _subset_accuracy_compute(y_true, y_pred)


def hamming_loss(y_true: Any, y_pred: Any) -> float:
    """Fraction of wrong labels over all rows and labels.

    ``hamming_loss = 1/(N M) sum_i |P_i xor Y_i|``; ``sklearn.metrics.hamming_loss``.

    Args:
        y_true: ``[N, M]`` 0/1 true labels.
        y_pred: ``[N, M]`` 0/1 predicted labels.

    Returns:
        A float in [0, 1] (0 is perfect).

    Example:
        >>> hamming_loss([[1, 0, 1, 0], [0, 1, 0, 0]], [[1, 0, 0, 0], [0, 1, 0, 1]])
        0.25
    """
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    return _hamming_loss_compute(y_true, y_pred)


def micro_f1(y_true: Any, y_pred: Any, zero_division: float = 0.0) -> float:
    """F1 of the counts pooled over all labels.

    ``micro_f1 = 2 TP / (2 TP + FP + FN)`` with ``TP = sum_j TP_j`` (likewise FP, FN);
    ``sklearn.metrics.f1_score(average='micro')``.

    Args:
        y_true: ``[N, M]`` 0/1 true labels.
        y_pred: ``[N, M]`` 0/1 predicted labels.
        zero_division: the value when ``TP + FP + FN = 0`` (both matrices all zero):
            0.0 (default, scikit-learn's), 1.0 or ``nan``.

    Returns:
        A float in [0, 1], or nan.
    """
    zero_division = validate_zero_division(zero_division)
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    return _label_average_compute("f1", "micro", y_true, y_pred, zero_division)


def micro_precision(y_true: Any, y_pred: Any, zero_division: float = 0.0) -> float:
    """Precision of the pooled counts: ``TP / (TP + FP)``; ``precision_score(average='micro')``.

    Args:
        y_true: ``[N, M]`` 0/1 true labels.
        y_pred: ``[N, M]`` 0/1 predicted labels.
        zero_division: the value when nothing is predicted (``TP + FP = 0``): 0.0 (default),
            1.0 or ``nan``.
    """
    zero_division = validate_zero_division(zero_division)
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    return _label_average_compute("precision", "micro", y_true, y_pred, zero_division)


def micro_recall(y_true: Any, y_pred: Any, zero_division: float = 0.0) -> float:
    """Recall of the pooled counts: ``TP / (TP + FN)``; ``recall_score(average='micro')``.

    Args:
        y_true: ``[N, M]`` 0/1 true labels.
        y_pred: ``[N, M]`` 0/1 predicted labels.
        zero_division: the value when no label is true (``TP + FN = 0``): 0.0 (default),
            1.0 or ``nan``.
    """
    zero_division = validate_zero_division(zero_division)
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    return _label_average_compute("recall", "micro", y_true, y_pred, zero_division)


def macro_f1(y_true: Any, y_pred: Any, zero_division: float = 0.0) -> float:
    """Unweighted mean over labels of each label's F1.

    ``macro_f1 = 1/M sum_j 2 TP_j / (2 TP_j + FP_j + FN_j)``;
    ``sklearn.metrics.f1_score(average='macro')`` over all ``M`` columns, including labels
    that are never true nor predicted.

    Args:
        y_true: ``[N, M]`` 0/1 true labels.
        y_pred: ``[N, M]`` 0/1 predicted labels.
        zero_division: a label's F1 when it is never true and never predicted
            (``TP_j + FP_j + FN_j = 0``). 0.0 (default; scikit-learn's default for
            ``average='macro'``) counts such labels as failures, 1.0 as successes, and ``nan``
            leaves them out of the mean (scikit-learn's nan convention; nan if every label
            is so).

    Returns:
        A float in [0, 1], or nan.

    Example:
        >>> y_true = [[1, 0, 0], [1, 1, 0]]
        >>> y_pred = [[1, 0, 0], [0, 1, 0]]
        >>> macro_f1(y_true, y_pred)  # labels: 2/3, 1, and 0 for the unused third label
        0.5555555555555555
        >>> macro_f1(y_true, y_pred, zero_division=float("nan"))  # leave the third out
        0.8333333333333333
    """
    zero_division = validate_zero_division(zero_division)
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    return _label_average_compute("f1", "macro", y_true, y_pred, zero_division)


def instance_f1(y_true: Any, y_pred: Any) -> float:
    """Mean over rows of each row's F1 (example-based F1, scikit-learn's ``average='samples'``).

    ``instance_f1 = 1/N sum_i 2 |P_i & Y_i| / (|P_i| + |Y_i|)``, where a row with an empty
    prediction for an empty truth scores 1 (scikit-learn's ``zero_division=1``; the same
    convention as the ``"instance-f1"`` utility in :mod:`comorbid.metrics.utility`). A row
    with an empty truth and a non-empty prediction, or the reverse, scores 0.

    Args:
        y_true: ``[N, M]`` 0/1 true labels.
        y_pred: ``[N, M]`` 0/1 predicted labels.

    Returns:
        A float in [0, 1].

    Example:
        >>> instance_f1([[1, 0, 1], [0, 0, 0]], [[1, 0, 0], [0, 0, 0]])  # (2/3 + 1) / 2
        0.8333333333333333
    """
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    return _samples_compute("f1", y_true, y_pred)


def jaccard(y_true: Any, y_pred: Any) -> float:
    """Mean over rows of each row's Jaccard index (scikit-learn's ``average='samples'``).

    ``jaccard = 1/N sum_i |P_i & Y_i| / |P_i | Y_i|``, where a row with an empty prediction
    for an empty truth scores 1 (scikit-learn's ``zero_division=1``; the same convention as
    the ``"jaccard"`` utility). Also called multi-label accuracy (Godbole & Sarawagi, 2004).

    Args:
        y_true: ``[N, M]`` 0/1 true labels.
        y_pred: ``[N, M]`` 0/1 predicted labels.

    Returns:
        A float in [0, 1].

    Example:
        >>> jaccard([[1, 1, 0], [0, 0, 0]], [[1, 0, 1], [0, 0, 0]])  # (1/3 + 1) / 2
        0.6666666666666666
    """
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    return _samples_compute("jaccard", y_true, y_pred)
