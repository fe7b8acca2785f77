"""Every metric at once, for reports: ``evaluate(y_true, y_pred, y_score=None) -> dict``."""

from __future__ import annotations

from typing import Any, Sequence

from comorbid.metrics import ranking, sets
from comorbid.metrics._inputs import (
    validate_and_format_pair,
    validate_and_format_scores,
    validate_k,
    validate_zero_division,
)

#: The ``k`` of precision@k and recall@k that :func:`evaluate` reports by default.
DEFAULT_KS = (1, 3, 5)


def evaluate(
    y_true: Any,
    y_pred: Any,
    y_score: Any | None = None,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    zero_division: float = 0.0,
) -> dict[str, float]:
    """All metrics of predicted sets, and of scores when ``y_score`` is given.

    Inputs are checked once; each value equals the function of the same name in
    :mod:`comorbid.metrics`.

    Args:
        y_true: ``[N, M]`` 0/1 true labels.
        y_pred: ``[N, M]`` 0/1 predicted labels.
        y_score: optional ``[N, M]`` scores (probabilities, logits...); finite.
        ks: the ``k`` of ``precision_at_{k}`` and ``recall_at_{k}``.
        zero_division: passed to ``micro_f1`` and ``macro_f1``.

    Returns:
        In this order: ``subset_accuracy``, ``hamming_loss``, ``micro_f1``, ``macro_f1``,
        ``instance_f1``, ``jaccard``; with ``y_score`` also ``ranking_loss``, ``coverage``,
        ``label_ranking_average_precision``, then ``precision_at_{k}`` and
        ``recall_at_{k}`` for each ``k`` in ``ks``. Values are Python floats.

    Example:
        >>> y_true = [[1, 0, 1], [0, 1, 0]]
        >>> y_pred = [[1, 0, 0], [0, 1, 0]]
        >>> {name: round(value, 3) for name, value in evaluate(y_true, y_pred).items()}
        {'subset_accuracy': 0.5, 'hamming_loss': 0.167, 'micro_f1': 0.8, 'macro_f1': 0.667, 'instance_f1': 0.833, 'jaccard': 0.75}
    """
    zero_division = validate_zero_division(zero_division)
    ks = [validate_k(k) for k in ks]
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    results = {
        "subset_accuracy": sets._subset_accuracy_compute(y_true, y_pred),
        "hamming_loss": sets._hamming_loss_compute(y_true, y_pred),
        "micro_f1": sets._label_average_compute("f1", "micro", y_true, y_pred, zero_division),
        "macro_f1": sets._label_average_compute("f1", "macro", y_true, y_pred, zero_division),
        "instance_f1": sets._samples_compute("f1", y_true, y_pred),
        "jaccard": sets._samples_compute("jaccard", y_true, y_pred),
    }
    if y_score is None:
        return results
    scores = validate_and_format_scores(y_score, y_true, allow_infinite=False)
    results["ranking_loss"] = ranking._ranking_loss_compute(y_true, scores)
    results["coverage"] = ranking._coverage_compute(y_true, scores)
    results["label_ranking_average_precision"] = ranking._label_ranking_average_precision_compute(y_true, scores)
    if ks:
        for k, value in zip(ks, ranking._precision_at_k_compute(y_true, scores, ks)):
            results[f"precision_at_{k}"] = value
        for k, value in zip(ks, ranking._recall_at_k_compute(y_true, scores, ks)):
            results[f"recall_at_{k}"] = value
    return results
