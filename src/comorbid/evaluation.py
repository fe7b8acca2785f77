"""Cross-validation: the same folds for every model and decoder, metrics per fold and on average."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp
from rich.progress import Progress

from comorbid.data.dataset import MultiLabelDataset
from comorbid.data.splits import kfold_indices
from comorbid.icd import LabelHierarchy, detect_system, expand_with_ancestors, is_valid
from comorbid.metrics import evaluate, ranking
from comorbid.metrics._inputs import format_labels, validate_and_format_pair, validate_and_format_scores, validate_labels
from comorbid.metrics.calibration import reliability
from comorbid.metrics.hierarchical import _hierarchical_f1_compute, _tree_cost_compute
from comorbid.model import MultiLabelModel

#: The metrics every report shows, in this order.
REPORTED_METRICS = ("subset_accuracy", "hamming_loss", "micro_f1", "macro_f1", "instance_f1", "jaccard")

#: The ranking metrics of the marginals (decoder-independent) that cv and evaluate report.
RANKING_METRICS = ("precision@5", "precision@8", "precision@15", "recall@8", "recall@15", "map")


#: The ICD-tree metrics reported beside :data:`REPORTED_METRICS` when the labels are ICD codes
#: (:mod:`comorbid.metrics.hierarchical`): tree_cost (lower is better), hierarchical_f1.
COST_METRICS = ("tree_cost", "hierarchical_f1")


def icd_hierarchy(label_names: Sequence[str] | None) -> LabelHierarchy | None:
    """The ancestor hierarchy of the labels, or ``None`` when they are not ICD codes of one system
    (or fewer than half are codes of the tables: words such as "fever" parse as ICD-10-CM)."""
    names = [str(name) for name in label_names or []]
    try:
        system = detect_system(names)
        if 2 * sum(is_valid(name, system) for name in names) < len(names):
            return None
        return expand_with_ancestors(names, system)
    except ValueError:
        return None


def cost_scores(y_true: Any, y_pred: Any, hierarchy: LabelHierarchy | None) -> dict[str, float]:
    """:data:`COST_METRICS` of one decoder's predictions (none without a hierarchy)."""
    if hierarchy is None:
        return {}
    y_true, y_pred = validate_and_format_pair(y_true, y_pred)
    return {"tree_cost": _tree_cost_compute(y_true, y_pred, hierarchy),
            "hierarchical_f1": _hierarchical_f1_compute(y_true, y_pred, hierarchy)}


def evaluate_predictions(y_true: np.ndarray, predictions: dict[str, np.ndarray],
                         label_names: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """The reported metrics of every decoder's predictions, and :data:`COST_METRICS` when the
    ``label_names`` of the columns are ICD codes."""
    hierarchy = icd_hierarchy(label_names) if label_names is not None else None
    return {
        decoder: {**{name: float(value) for name, value in evaluate(y_true, y_pred).items() if name in REPORTED_METRICS},
                  **cost_scores(y_true, y_pred, hierarchy)}
        for decoder, y_pred in predictions.items()
    }


def ranking_scores(y_true: Any, marginals: Any, unranked: Any | None = None) -> dict[str, float]:
    """:data:`RANKING_METRICS` of codes ranked by marginal probability.

    ``precision@k`` is :func:`comorbid.metrics.precision_at_k`, ``recall@k``
    :func:`comorbid.metrics.recall_at_k` and ``map`` :func:`comorbid.metrics.mean_average_precision`
    (ties to the lower column; rows without a gold code left out of recall and MAP).

    Args:
        y_true: ``[N, M]`` 0/1 gold codes among the model's ``M`` labels.
        marginals: ``[N, M]`` P(y_j = 1 | x).
        unranked: optional ``[N, U]`` 0/1 gold codes the model does not know (numpy or
            ``scipy.sparse``): never ranked, they count as misses (they lower recall and MAP;
            precision@k is unchanged).
    """
    labels = validate_labels("y_true", y_true)
    labels = format_labels(labels, sparse=sp.issparse(labels))
    scores = validate_and_format_scores(marginals, labels, allow_infinite=True, name="marginals")
    extra = None
    if unranked is not None and unranked.shape[1]:
        extra = np.asarray(unranked.sum(axis=1)).ravel().astype(np.int64)
    precision = ranking._precision_at_k_compute(labels, scores, [5, 8, 15])
    recall = ranking._recall_at_k_compute(labels, scores, [8, 15], extra)
    values = [*precision, *recall, ranking._mean_average_precision_compute(labels, scores, extra)]
    return dict(zip(RANKING_METRICS, values))


@dataclass
class OutOfFold:
    """Each row's prediction by the fold model that did not train on it (rows in dataset order).

    Attributes:
        labels: ``[N, M]`` the gold labels.
        predictions: decoder spec -> ``[N, M]`` 0/1 int8 label sets.
        marginals: ``[N, M]`` P(y_j = 1 | x).
        label_names: the ``M`` label names.
        fold: ``[N]`` the (1-based) fold each row was a test row of.
    """

    labels: np.ndarray
    predictions: dict[str, np.ndarray]
    marginals: np.ndarray
    label_names: list[str]
    fold: np.ndarray

    def metrics(self) -> dict[str, dict[str, float]]:
        """The reported metrics of every decoder over all rows at once (pooled, not a mean over
        folds): what an out-of-fold report shows."""
        return evaluate_predictions(self.labels, self.predictions, self.label_names)


def cross_validate(
    dataset: MultiLabelDataset,
    make_model: Callable[[], MultiLabelModel],
    decoders: Sequence[str],
    n_folds: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
    description: str = "",
    keep_out_of_fold: bool = False,
) -> dict[str, Any]:
    """Train a fresh model on each training fold and score every decoder on its test fold.

    Folds are iteratively stratified (Sechidis et al., 2011; Szymanski & Kajdanowicz, 2017) and
    depend only on the labels, ``n_folds`` and ``seed``, so every model sees the same folds.

    Returns:
        ``{"folds": k, "seed": .., "metrics": {decoder: {metric: mean}}, "std": {..},
        "per_fold": {decoder: [{metric: value}, ...]}, "train_s": [..], "predict_s": [..] (decoding and marginals),
        "ece": [..], "calibration": [..], "ranking": {"mean": {..}, "std": {..}, "per_fold": [..]}}``:
        the metrics are :data:`REPORTED_METRICS`, then :data:`COST_METRICS` when the labels are
        ICD codes (:func:`icd_hierarchy`); ``ranking`` holds the :data:`RANKING_METRICS` of each test fold's marginals
        (:func:`ranking_scores`: one set per fold, whatever the decoders), ``ece`` the expected
        calibration error of each test fold's marginals (10 bins, ``comorbid.metrics.reliability``), ``calibration``
        each fold model's fitted temperature record (empty dicts when not calibrated). With
        ``keep_out_of_fold``, also ``"out_of_fold"``: an :class:`OutOfFold` (arrays; not JSON).
    """
    folds = kfold_indices(dataset.labels, n_folds=n_folds, seed=seed)
    per_fold: dict[str, list[dict[str, float]]] = {decoder: [] for decoder in decoders}
    train_seconds, predict_seconds, eces, calibrations, rankings = [], [], [], [], []
    task = progress.add_task(f"{description} folds", total=n_folds, status="") if progress is not None else None
    if keep_out_of_fold:
        shape = dataset.labels.shape
        kept = OutOfFold(np.asarray(dataset.labels), {d: np.zeros(shape, np.int8) for d in decoders},
                         np.zeros(shape, np.float32), list(dataset.label_names), np.zeros(shape[0], np.int64))
    for index, (train_rows, test_rows) in enumerate(folds, start=1):
        start = time.perf_counter()
        # decoders tuned on held-out data are tuned inside the training fold only
        model = make_model().fit(dataset.subset(train_rows), progress=progress, description=f"  fold {index}",
                                 decoders=decoders)
        train_seconds.append(time.perf_counter() - start)
        test = dataset.subset(test_rows)
        start = time.perf_counter()
        # one distribution per batch serves the decoders and the marginals (a chain's Monte
        # Carlo estimate is computed once, not twice)
        predictions, marginals = model.predict_with_marginals(test, decoders)
        predict_seconds.append(time.perf_counter() - start)
        if keep_out_of_fold:
            for decoder, sets in predictions.items():
                kept.predictions[decoder][test_rows] = sets
            kept.marginals[test_rows] = marginals
            kept.fold[test_rows] = index
        for decoder, scores in evaluate_predictions(test.labels, predictions, test.label_names).items():
            per_fold[decoder].append(scores)
        eces.append(reliability(test.labels, np.clip(marginals, 0.0, 1.0)).ece)
        rankings.append(ranking_scores(test.labels, marginals))
        calibrations.append(dict(model.calibration_))
        if progress is not None:
            progress.update(task, advance=1)
    if progress is not None:
        progress.remove_task(task)
    names = {d: [m for m in (*REPORTED_METRICS, *COST_METRICS) if all(m in f for f in rows)] for d, rows in per_fold.items()}
    extra = {"out_of_fold": kept} if keep_out_of_fold else {}
    return {
        **extra,
        "folds": n_folds,
        "seed": seed,
        "metrics": {d: {m: float(np.mean([f[m] for f in rows])) for m in names[d]} for d, rows in per_fold.items()},
        "std": {d: {m: float(np.std([f[m] for f in rows])) for m in names[d]} for d, rows in per_fold.items()},
        "per_fold": per_fold,
        "train_s": train_seconds,
        "predict_s": predict_seconds,
        "ece": eces,
        "calibration": calibrations,
        "ranking": {
            "mean": {m: float(np.mean([f[m] for f in rankings])) for m in RANKING_METRICS},
            "std": {m: float(np.std([f[m] for f in rankings])) for m in RANKING_METRICS},
            "per_fold": rankings,
        },
    }
