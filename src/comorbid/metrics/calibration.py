"""Calibration of marginal probabilities: reliability bins and the expected calibration error.

Example:
    >>> import numpy as np
    >>> from comorbid.metrics import reliability
    >>> reliability(np.array([[1, 0]]), np.array([[0.9, 0.2]]), bins=2).ece
    0.15
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
