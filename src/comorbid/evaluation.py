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


#: Rare-code metrics (:func:`rare_code_scores`): codes with at most :data:`RARE_MAX_COUNT`
#: training notes (never-seen codes included), and the codes never seen in training.
RARE_METRICS = ("rare_micro_f1", "rare_map", "unseen_recall", "unseen_recall@15")
RARE_MAX_COUNT = 2


def rare_code_scores(y_true: Any, marginals: Any, y_pred: Any, train_counts: Any, unranked: Any | None = None,
                     max_count: int = RARE_MAX_COUNT) -> dict[str, float]:
    """:data:`RARE_METRICS`: how a model does on the codes it saw in at most ``max_count``
    training notes, and on the codes it never saw.

    * ``rare_micro_f1``: micro-F1 of ``y_pred`` over the rare columns (gold codes unknown to
      the model count as missed);
    * ``rare_map``: MAP of the marginals ranked among the rare codes only, over the rows with a
      rare gold code (unknown gold codes count as never ranked);
    * ``unseen_recall``: share of the gold occurrences of never-seen codes (columns with count
      0, and unknown codes) that ``y_pred`` finds;
    * ``unseen_recall@15``: share of them among each row's 15 best-ranked codes (all codes).

    Args:
        y_true: ``[N, M]`` 0/1 gold codes among the model's ``M`` labels.
        marginals: ``[N, M]`` P(y_j = 1 | x).
        y_pred: ``[N, M]`` 0/1 one decoder's label sets.
        train_counts: ``[M]`` training notes of each label.
        unranked: optional ``[N, U]`` 0/1 gold codes the model does not know (never seen).

    Example:
        >>> y = np.array([[1, 0, 1], [0, 1, 0]]); p = np.array([[1, 0, 0], [0, 1, 0]])
        >>> m = np.array([[.9, .1, .2], [.1, .8, .3]])
        >>> rare_code_scores(y, m, p, np.array([5, 1, 0]))["unseen_recall"]
        0.0
    """
    y = np.asarray(sp.csr_matrix(y_true).toarray(), dtype=bool)
    pred = np.asarray(sp.csr_matrix(y_pred).toarray(), dtype=bool)
    scores = np.asarray(marginals, dtype=np.float64)
    counts = np.asarray(train_counts).ravel()
    extra = (np.zeros(len(y), dtype=np.int64) if unranked is None or unranked.shape[1] == 0
             else np.asarray(unranked.sum(axis=1)).ravel().astype(np.int64))
    rare = counts <= max_count
    true_positive = (y[:, rare] & pred[:, rare]).sum()
    predicted = pred[:, rare].sum()
    gold = y[:, rare].sum() + extra.sum()
    rare_f1 = 2 * true_positive / (predicted + gold) if predicted + gold else 0.0
    rare_map = ranking._mean_average_precision_compute(sp.csr_matrix(y[:, rare]), scores[:, rare], extra) \
        if rare.any() else (0.0 if extra.any() else float("nan"))
    unseen = counts == 0
    unseen_gold = y[:, unseen].sum() + extra.sum()
    found = (y[:, unseen] & pred[:, unseen]).sum()
    top = np.argsort(-scores, axis=1, kind="stable")[:, :15]
    in_top = np.zeros_like(y)
    np.put_along_axis(in_top, top, True, axis=1)
    found_top = (y[:, unseen] & in_top[:, unseen]).sum()
    nan = float("nan")
    return {"rare_micro_f1": float(rare_f1), "rare_map": float(rare_map),
            "unseen_recall": float(found / unseen_gold) if unseen_gold else nan,
            "unseen_recall@15": float(found_top / unseen_gold) if unseen_gold else nan}


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
        each fold model's fitted temperature record (empty dicts when not calibrated), ``rare``
        each decoder's :data:`RARE_METRICS` (:func:`rare_code_scores`), mean over folds. With
        ``keep_out_of_fold``, also ``"out_of_fold"``: an :class:`OutOfFold` (arrays; not JSON).
    """
    folds = kfold_indices(dataset.labels, n_folds=n_folds, seed=seed)
    per_fold: dict[str, list[dict[str, float]]] = {decoder: [] for decoder in decoders}
    train_seconds, predict_seconds, eces, calibrations, rankings = [], [], [], [], []
    rare: dict[str, list[dict[str, float]]] = {decoder: [] for decoder in decoders}
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
        counts = np.asarray(dataset.labels[train_rows].sum(0)).ravel()  # codes absent from the fold: unseen
        for decoder, y_pred in predictions.items():
            rare[decoder].append(rare_code_scores(test.labels, marginals, y_pred, counts))
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
        # RARE_METRICS of each decoder (codes with <= 2 notes in the training fold; never-seen
        # codes: those absent from it); NaN folds (no never-seen gold code) left out of the mean
        "rare": {d: {m: float(np.nanmean([f[m] for f in rows])) if any(np.isfinite(f[m]) for f in rows)
                     else float("nan") for m in RARE_METRICS} for d, rows in rare.items()},
    }
