"""The numbers of a model report: per-label scores, error pairs, reliability bins. Numpy only.

Reliability bins and the expected calibration error are a metric, so they live in
:mod:`comorbid.metrics.calibration`; they are re-exported here because ``comorbid.report.stats``
was where they were (backwards compatibility).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from comorbid.metrics.calibration import Reliability, reliability


@dataclass
class LabelScores:
    """Counts and scores of one label (precision/recall/F1 are 0 when undefined)."""

    label: str
    support: int
    predicted: int
    true_positives: int
    precision: float
    recall: float
    f1: float


def per_label_scores(y_true: np.ndarray, y_pred: np.ndarray, label_names: list[str]) -> list[LabelScores]:
    """One :class:`LabelScores` per column of ``y_true``/``y_pred [N, M]`` (0/1), in column order.

    Equal to ``sklearn.metrics.precision_recall_fscore_support(average=None, zero_division=0)``.
    """
    y_true = np.asarray(y_true, dtype=bool)
    y_pred = np.asarray(y_pred, dtype=bool)
    if y_true.shape != y_pred.shape or y_true.shape[1] != len(label_names):
        raise ValueError(f"Expected y_true, y_pred [N, {len(label_names)}], got {y_true.shape} and {y_pred.shape}")
    tp = (y_true & y_pred).sum(0)
    support = y_true.sum(0)
    predicted = y_pred.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        f1 = np.where(support + predicted > 0, 2 * tp / np.maximum(support + predicted, 1), 0.0)
    return [
        LabelScores(name, int(support[j]), int(predicted[j]), int(tp[j]), float(precision[j]), float(recall[j]),
                    float(f1[j]))
        for j, name in enumerate(label_names)
    ]


def error_pairs(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``C [M, M]``: ``C[j, k]`` = rows where label ``j`` was predicted but not gold (a false
    positive) while label ``k`` was gold but not predicted (a miss): ``j`` given in place of ``k``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    false_positive = y_pred * (1 - y_true)
    missed = y_true * (1 - y_pred)
    return false_positive.T @ missed


__all__ = ["LabelScores", "Reliability", "error_pairs", "per_label_scores", "reliability"]
