"""The numbers of a model report: per-label scores, error pairs, reliability bins. Numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


@dataclass
class Reliability:
    """Equal-width bins of predicted probabilities over every (row, label) pair.

    Attributes:
        edges: ``[bins + 1]`` bin edges on [0, 1].
        counts: pairs per bin ``[bins]``.
        confidence: mean predicted probability per bin (NaN for an empty bin).
        frequency: share of positive gold labels per bin (NaN for an empty bin).
        ece: expected calibration error, ``sum_b n_b / n * |confidence_b - frequency_b|``
            (Naeini, Cooper & Hauskrecht, "Obtaining Well Calibrated Probabilities Using
            Bayesian Binning", AAAI 2015).
    """

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    frequency: np.ndarray
    ece: float


def reliability(y_true: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> Reliability:
    """Reliability bins of marginals ``probabilities [N, M]`` against 0/1 ``y_true [N, M]``."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"Expected y_true and probabilities of one shape, got {np.shape(y_true)} and {np.shape(probabilities)}")
    if bins < 1:
        raise ValueError(f"Expected bins >= 1, got {bins}")
    if p.size and (np.nanmin(p) < 0 or np.nanmax(p) > 1 or np.isnan(p).any()):
        raise ValueError("Expected probabilities in [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)  # p == 1 in the last bin
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, weights=p, minlength=bins) / counts
        frequency = np.bincount(which, weights=y, minlength=bins) / counts
    filled = counts > 0
    ece = float(np.sum(counts[filled] / max(p.size, 1) * np.abs(confidence[filled] - frequency[filled])))
    return Reliability(edges, counts, confidence, frequency, ece)
