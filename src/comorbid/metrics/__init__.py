"""Functional multi-label metrics: numpy in, float out, equal to scikit-learn's.

Label matrices ``y_true`` and ``y_pred`` are ``[N, M]`` of 0/1 and scores ``y_score`` are
``[N, M]`` floats; each may be a numpy array, a nested list, a ``scipy.sparse`` matrix or a
torch tensor. Every function checks its inputs (same shape, only 0/1, no NaN scores) and
raises ``ValueError`` saying what was expected and what was got.

Set metrics (:mod:`comorbid.metrics.sets`): ``subset_accuracy``, ``hamming_loss``,
``micro_f1``, ``macro_f1``, ``micro_precision``, ``micro_recall``, ``instance_f1``,
``jaccard``. Score metrics (:mod:`comorbid.metrics.ranking`): ``ranking_loss``, ``coverage``,
``label_ranking_average_precision``, ``precision_at_k``, ``recall_at_k``,
``mean_average_precision``. Calibration of marginals (:mod:`comorbid.metrics.calibration`):
``reliability`` (bins and expected calibration error). All at once:
``evaluate``. Per-row utilities for decoders: :mod:`comorbid.metrics.utility`.
See ``docs/metrics.md`` for formulas and conventions.
"""

from comorbid.metrics.calibration import Reliability, reliability
from comorbid.metrics.evaluate import DEFAULT_KS, evaluate
from comorbid.metrics.ranking import (
    coverage,
    label_ranking_average_precision,
    mean_average_precision,
    precision_at_k,
    ranking_loss,
    recall_at_k,
)
from comorbid.metrics.sets import (
    hamming_loss,
    instance_f1,
    jaccard,
    macro_f1,
    micro_f1,
    micro_precision,
    micro_recall,
    subset_accuracy,
)
from comorbid.metrics.utility import UTILITIES, mean_utility, utility

__all__ = [
    "DEFAULT_KS",
    "Reliability",
    "UTILITIES",
    "coverage",
    "evaluate",
    "hamming_loss",
    "instance_f1",
    "jaccard",
    "label_ranking_average_precision",
    "macro_f1",
    "mean_average_precision",
    "mean_utility",
    "micro_f1",
    "micro_precision",
    "micro_recall",
    "precision_at_k",
    "ranking_loss",
    "recall_at_k",
    "reliability",
    "subset_accuracy",
    "utility",
]
