"""Decoders for corpus-level F1: thresholds on the marginals, tuned on held-out predictions.

Macro- and micro-F1 are not sums of per-row utilities, so no per-row decision is Bayes-optimal
for them; but their population optimum is a threshold on the marginals
``eta_j(x) = P(y_j = 1 | x)``: one threshold per label for macro-averaged metrics, and one
threshold shared by all labels for micro-averaged ones (Koyejo, Natarajan, Ravikumar & Dhillon,
2015, NeurIPS, "Consistent multilabel classification", Theorems 3 and 7). We therefore tune

- ``macro-f1``: per label, the threshold that maximises that label's F1 on the held-out rows
  (the SCut strategy: Yang, 2001, SIGIR; Fan & Lin, 2007, "A study on threshold selection for
  multi-label classification", NTU tech. report);
- ``micro-f1``: one global threshold, maximising the F1 of the counts pooled over labels. A
  shared threshold is what the theory prescribes and has one parameter instead of M, so rare
  labels cannot overfit it; per-label coordinate ascent (Fan & Lin, 2007) fits M.

Each maximisation is exact over all distinct cut points, ``O(N log N)`` per label (sorting);
the threshold is placed midway between the last score predicted positive and the next one.
Two fallbacks keep rare labels from overfitting the held-out rows:

- a label with fewer than ``min_positives`` (default 1) positives among the held-out rows has
  no F1 curve at all (its F1 is 0 whatever is predicted), so it gets the global (micro)
  threshold: for calibrated marginals that is near ``F*/2``, the optimal F1 threshold of
  Lipton, Elkan & Naryanaswamy (2014, ECML PKDD, "Optimal thresholding of classifiers to
  maximize F1 measure");
- a label whose best held-out F1 is below ``fbr`` (default 0.2) gets the highest held-out
  score as its threshold, so it is predicted only above anything seen: the SCutFBR.1 rule of
  Lewis, Yang, Rose & Li (2004, JMLR 5, "RCV1", Section 7) studied by Fan & Lin (2007).
  Without it, a label with one held-out positive ranked among many negatives gets a
  threshold near 0 and is predicted for most rows (on CMC 2007, independent model: 13 labels
  a row, Hamming loss 0.27; see docs/decoders.md).

With no positive at all in the held-out rows, every threshold is 1/2.

Prediction: ``marginals > threshold``, ``O(M)`` per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from comorbid.decoders.base import Decoder
from comorbid.distributions.base import JointLabelDistribution

#: The threshold when held-out data say nothing (no positives).
DEFAULT_THRESHOLD = 0.5


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The threshold ``t`` maximising the F1 of ``scores > t`` against ``labels``, and that F1.

    Args:
        scores: ``[N]`` floats in [0, 1].
        labels: ``[N]`` 0/1.

    Returns:
        ``(t, f1)``; ``(0.5, 0.0)`` when there is no positive. Among equal F1 the fewest
        predicted positives (the highest threshold) win.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(np.float64)
    positives = labels.sum()
    if positives == 0 or scores.size == 0:
        return DEFAULT_THRESHOLD, 0.0
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], np.cumsum(labels[order])
    n_predicted = np.arange(1, scores.size + 1)
    f1 = 2.0 * hits / (n_predicted + positives)
    # a cut can only fall between different scores: after position i if ranked[i] > ranked[i+1]
    cuttable = np.append(ranked[:-1] > ranked[1:], True)
    f1 = np.where(cuttable, f1, -1.0)
    best = int(np.argmax(f1))  # first maximum: the fewest predictions
    if best == scores.size - 1:
        threshold = ranked[-1] / 2.0 if ranked[-1] > 0 else -1.0
    else:
        threshold = (ranked[best] + ranked[best + 1]) / 2.0
    return float(threshold), float(f1[best])


class ThresholdDecoder(Decoder):
    """``marginals > thresholds`` with thresholds fitted on held-out predictions."""

    needs_fitting = True
    #: Labels with fewer held-out positives than this get the global threshold.
    DEFAULT_MIN_POSITIVES = 1
    #: Labels whose best held-out F1 is below this are predicted only above every held-out score.
    DEFAULT_FBR = 0.2

    def __init__(self, min_positives: int = DEFAULT_MIN_POSITIVES, fbr: float = DEFAULT_FBR):
        if min_positives < 1:
            raise ValueError(f"Expected min_positives >= 1, got {min_positives}")
        if not 0.0 <= fbr < 1.0:
            raise ValueError(f"Expected 0 <= fbr < 1, got {fbr}")
        self.min_positives = min_positives
        self.fbr = float(fbr)
        self.thresholds_: np.ndarray | None = None
        self.global_threshold_: float | None = None
        self.fallback_labels_: list[int] = []
        self.fbr_labels_: list[int] = []
        self.n_heldout_: int = 0

    def fit(self, marginals: np.ndarray, labels: np.ndarray) -> "ThresholdDecoder":
        marginals = np.asarray(marginals, dtype=np.float64)
        labels = np.asarray(labels)
        if marginals.ndim != 2 or marginals.shape != labels.shape:
            raise ValueError(f"Expected held-out marginals and labels of the same shape [N, M], got {marginals.shape} and {labels.shape}")
        if not np.isfinite(marginals).all():
            raise ValueError("Expected finite held-out marginals")
        self.global_threshold_, _ = best_f1_threshold(marginals, labels)
        self.thresholds_ = self._label_thresholds(marginals, labels)
        self.n_heldout_ = int(marginals.shape[0])
        return self

    def _label_thresholds(self, marginals, labels) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "thresholds": [float(t) for t in self.thresholds_],
            "global_threshold": self.global_threshold_,
            "fallback_labels": list(self.fallback_labels_),
            "fbr_labels": list(self.fbr_labels_),
            "min_positives": self.min_positives,
            "fbr": self.fbr,
            "n_heldout": self.n_heldout_,
        }

    def load_state(self, state: dict[str, Any]) -> "ThresholdDecoder":
        try:
            self.thresholds_ = np.asarray(state["thresholds"], dtype=np.float64)
            self.global_threshold_ = float(state["global_threshold"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"Expected the {self.name} decoder state to hold 'thresholds' and 'global_threshold', got {state!r}") from None
        if self.thresholds_.ndim != 1:
            raise ValueError(f"Expected a list of thresholds in the {self.name} decoder state")
        self.fallback_labels_ = list(state.get("fallback_labels", []))
        self.fbr_labels_ = list(state.get("fbr_labels", []))
        self.min_positives = int(state.get("min_positives", self.min_positives))
        self.fbr = float(state.get("fbr", self.fbr))
        self.n_heldout_ = int(state.get("n_heldout", 0))
        return self

    def _check_fitted(self) -> None:
        if self.thresholds_ is None:
            raise RuntimeError(
                f"The {self.name} decoder has no thresholds: fit it on held-out predictions "
                f"(MultiLabelModel.fit(..., decoders=['{self.name}']), CLI: train --decode {self.name})"
            )

    def _decode(self, dist: JointLabelDistribution) -> torch.Tensor:
        self._check_fitted()
        with torch.no_grad():
            marginals = dist.marginals()
        if marginals.shape[-1] != len(self.thresholds_):
            raise ValueError(f"Expected {len(self.thresholds_)} labels (as fitted), got {marginals.shape[-1]}")
        thresholds = torch.as_tensor(self.thresholds_, dtype=marginals.dtype, device=marginals.device)
        return (marginals > thresholds).to(torch.get_default_dtype())


class MacroF1Decoder(ThresholdDecoder):
    """Per-label thresholds maximising each label's held-out F1, with the two fallbacks of the
    module docstring. ``macro-f1=FBR`` sets ``fbr`` (``macro-f1=0`` turns SCutFBR off)."""

    name = "macro-f1"
    metric = "macro-f1"

    @property
    def spec(self) -> str:
        return self.name if self.fbr == self.DEFAULT_FBR else f"{self.name}={self.fbr:g}"

    def _label_thresholds(self, marginals, labels):
        thresholds = np.full(marginals.shape[1], self.global_threshold_)
        positives = labels.sum(0)
        self.fallback_labels_ = [int(j) for j in np.flatnonzero(positives < self.min_positives)]
        self.fbr_labels_ = []
        for j in np.flatnonzero(positives >= self.min_positives):
            thresholds[j], f1 = best_f1_threshold(marginals[:, j], labels[:, j])
            if f1 < self.fbr:
                thresholds[j] = marginals[:, j].max()
                self.fbr_labels_.append(int(j))
        return thresholds


class MicroF1Decoder(ThresholdDecoder):
    """One threshold for every label, maximising the held-out pooled F1."""

    name = "micro-f1"
    metric = "micro-f1"

    def _label_thresholds(self, marginals, labels):
        self.fallback_labels_ = []
        return np.full(marginals.shape[1], self.global_threshold_)
