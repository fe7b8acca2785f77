"""Held-out predictions of the training rows: what decoders (and calibration) are tuned on.

Thresholds for macro/micro-F1 must be tuned on predictions for rows the model did not train
on; tuning them on the training rows would see over-confident marginals. We use out-of-fold
predictions: the training rows are split into ``n_folds`` iteratively stratified folds
(Sechidis et al., 2011), a model of the same configuration is trained on all folds but one and
predicts the one left out, so every training row gets one held-out prediction. Compared with a
single validation split this costs ``n_folds`` extra trainings (each on ``(n_folds-1)/n_folds`` of
the rows) but uses every row for tuning, which matters for rare labels. It is cross-validation
inside the training set only: in ``cv`` the outer test fold is never seen.

At scale the stage would multiply training time by up to ``1 + n_folds (n_folds - 1) / n_folds``
(3 for 3 folds). So only small problems get every fold: with more than
:data:`ALL_FOLDS_MAX_CELLS` label cells (rows x labels; CMC 2007 has 44,000, CodiEsp 1.6
million, MIMIC-size data hundreds of millions) one fold is held out and the others train one
model, which costs one extra training on ``(n_folds-1)/n_folds`` of the rows and tunes on
``1/n_folds`` of them (still thousands of rows at that size).

The stage is generic: :func:`held_out_predictions` takes a function that trains a model on a
dataset, and returns the fold models with the rows each held out, so later stages (temperature
scaling) can recompute the held-out distributions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from comorbid.data.dataset import MultiLabelDataset
from comorbid.data.splits import kfold_indices

#: Folds of the held-out stage, and the fewest rows it needs (fewer: no held-out stage).
DEFAULT_FOLDS = 3
MIN_ROWS = 6
#: Above this many label cells (rows x labels) the stage holds out one fold instead of all.
ALL_FOLDS_MAX_CELLS = 1_000_000


@dataclass
class HeldOut:
    """Held-out predictions for the rows of a dataset.

    Attributes:
        marginals: ``[n, M]`` P(y_j = 1 | x) from a model that did not train on that row, for
            the ``n`` held-out rows ``rows`` (every row of the dataset, in its order, when
            every fold was held out).
        labels: ``[n, M]`` the true labels of those rows.
        folds: ``(model, rows)`` pairs: each model and the row indices ``[n_k]`` it held out.
    """

    marginals: np.ndarray
    labels: np.ndarray
    folds: list[tuple[Any, np.ndarray]] = field(default_factory=list)
    rows: np.ndarray | None = None


def held_out_predictions(
    train: Callable[[MultiLabelDataset, str], Any],
    dataset: MultiLabelDataset,
    n_folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> HeldOut | None:
    """Out-of-fold marginals of every row of ``dataset``.

    Args:
        train: ``(dataset, description) -> model`` with a ``marginals(dataset) -> [n, M]``
            method; called once per fold on the other folds' rows.
        dataset: the training rows.
        n_folds: number of folds (at least 2; fewer if the dataset is small).
        seed: seeds the fold assignment (the same seed, the same folds).

    Returns:
        A :class:`HeldOut`, or ``None`` when the dataset has fewer than ``MIN_ROWS`` rows. With
        more than :data:`ALL_FOLDS_MAX_CELLS` label cells only the first fold is held out.
    """
    if n_folds < 2:
        raise ValueError(f"Expected at least 2 held-out folds, got {n_folds}")
    n = len(dataset)
    if n < MIN_ROWS:
        return None
    n_folds = min(n_folds, n // 2)
    splits = kfold_indices(dataset.labels, n_folds, seed)
    if dataset.labels.size > ALL_FOLDS_MAX_CELLS:
        splits = splits[:1]
    parts, folds = [], []
    for index, (train_rows, heldout_rows) in enumerate(splits, start=1):
        model = train(dataset.subset(train_rows), f"  held-out {index}/{len(splits)}")
        parts.append(model.marginals(dataset.subset(heldout_rows)))
        folds.append((model, np.asarray(heldout_rows)))
    rows = np.concatenate([heldout for _, heldout in folds])
    order = np.argsort(rows, kind="stable")  # the dataset's row order
    marginals = np.concatenate(parts).astype(np.float64)[order]
    rows = rows[order]
    return HeldOut(marginals, np.asarray(dataset.labels)[rows].copy(), folds, rows)
