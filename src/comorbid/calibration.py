"""Temperature scaling of a trained model, fitted on held-out predictions.

Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural Networks", ICML 2017: one scalar
``T`` divides every logit (every log-potential of a joint model, see
:meth:`JointLabelDistribution.tempered`), chosen to minimise the negative log-likelihood of the
true label sets on rows the model did not train on. One parameter cannot overfit, keeps the
ranking of labels and of label sets nearly unchanged, and fixes a model that is uniformly over-
(``T > 1``) or under-confident (``T < 1``), which is what a penalised model trained to
convergence on few rows tends to be. The held-out rows are the out-of-fold predictions of
:mod:`comorbid.heldout`, so calibration and the decoders tuned there share the same extra
trainings; decoders are then tuned on the calibrated marginals.

A reliability table (expected calibration error of the marginals before and after) is kept
with the result, so whether it helped is visible (``comorbid.report`` draws the diagram).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from comorbid.data.dataset import MultiLabelDataset
from comorbid.heldout import HeldOut
from comorbid.metrics.calibration import reliability

#: The temperatures searched, ``[low, high]``.
TEMPERATURE_BOUNDS = (0.05, 20.0)


@dataclass
class Calibration:
    """A fitted temperature and what it changed on the held-out rows.

    Attributes:
        temperature: ``T`` (1 = unchanged).
        nll_before, nll_after: mean held-out negative log-likelihood of the true label set, at
            ``T = 1`` and at ``T``.
        ece_before, ece_after: expected calibration error of the held-out marginals (10 bins).
        rows: held-out rows it was fitted on.
    """

    temperature: float
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _held_out_features(heldout: HeldOut, dataset: MultiLabelDataset):
    """``(fold model, features [n_k, d], labels [n_k, M])`` for every held-out fold."""
    pieces = []
    for model, rows in heldout.folds:
        part = dataset.subset(rows)
        with torch.no_grad():
            features = model.encoder_(model.encoder_.featurize(part.inputs))
        pieces.append((model, features, torch.as_tensor(part.labels, dtype=torch.get_default_dtype())))
    return pieces


def fit_temperature(heldout: HeldOut, dataset: MultiLabelDataset) -> Calibration:
    """The temperature minimising the held-out NLL (bounded search over ``log T``).

    Side effect: every fold model gets the fitted temperature and ``heldout.marginals`` are
    recomputed with it, so that what is tuned on them next (decoder thresholds) sees what the
    calibrated model will predict.

    Args:
        heldout: out-of-fold predictions of ``dataset`` (:func:`comorbid.heldout.held_out_predictions`).
        dataset: the rows they were made for.
    """
    pieces = _held_out_features(heldout, dataset)
    n = sum(len(labels) for _, _, labels in pieces)

    def nll(log_temperature: float) -> float:
        total = 0.0
        with torch.no_grad():
            for model, features, labels in pieces:
                model.head_.temperature = math.exp(log_temperature)
                total -= model.head_.distribution(features).log_prob(labels).sum().item()
        return total / n

    before = nll(0.0)
    ece_before = reliability(heldout.labels, np.clip(heldout.marginals, 0.0, 1.0)).ece
    low, high = (math.log(t) for t in TEMPERATURE_BOUNDS)
    result = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-3})
    log_temperature = float(result.x) if result.fun < before else 0.0
    after = nll(log_temperature)  # leaves every fold model at the fitted temperature
    for model, rows in heldout.folds:
        # heldout.marginals holds the held-out rows only, in the dataset's order
        positions = rows if heldout.rows is None else np.searchsorted(heldout.rows, rows)
        heldout.marginals[positions] = model.marginals(dataset.subset(rows))
    ece_after = reliability(heldout.labels, np.clip(heldout.marginals, 0.0, 1.0)).ece
    return Calibration(math.exp(log_temperature), before, after, ece_before, ece_after, n)
