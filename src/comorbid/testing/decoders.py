"""Conformance checks every decoder must pass, against brute force over all 2^M label sets.

A decoder that maximises a per-row utility is checked on every listed distribution: its
choice's expected utility, computed exactly by enumeration, must equal the best over all
``2^M`` sets when the decoder says it is exact for that distribution (``is_exact``), and be
within a stated tolerance otherwise. A decoder tuned on held-out data for a corpus-level
metric (macro/micro F1) must reach the best value of that metric on its tuning data among
all the thresholds it could have chosen.

**Tolerance of sampling decoders.** A sampling decoder estimates each candidate's expected
utility (range ``R``) from ``n`` samples. By Hoeffding's inequality and a union bound over the
``2^M`` possible sets and ``B`` rows, every estimate is within ``eps`` of its mean with
probability at least ``1 - 2 * 2^M * B * exp(-2 n eps^2 / R^2)``; then the chosen set is within
``2 eps`` of the best *candidate*. :func:`sampling_tolerance` returns ``2 eps`` for a
false-failure rate of ``1e-6``. Whether the best set is among the candidates is not covered
by the bound: that part is checked, not assumed, by the same test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from comorbid.decoders.base import Decoder
from comorbid.distributions.base import JointLabelDistribution
from comorbid.testing.distributions import enumerate_probs

#: Chance that a correct sampling decoder fails its tolerance check, per check.
SAMPLING_FALSE_FAILURE_RATE = 1e-6
#: Tolerance for decoders that are approximate for a reason other than sampling (Monte Carlo
#: marginals, a narrow beam); generous, since those are checked in the distribution suite.
APPROXIMATE_TOLERANCE = 0.05

#: ``table(sets [K, M]) -> [K, K]``: utility of candidate ``k`` when ``k'`` is true.
UtilityTable = Callable[[torch.Tensor], torch.Tensor]


def sampling_tolerance(n_samples: int, n_labels: int, batch_size: int, value_range: float = 1.0,
                       false_failure_rate: float = SAMPLING_FALSE_FAILURE_RATE) -> float:
    """``2 eps`` with ``2 * 2^M * B * exp(-2 n eps^2 / R^2) = false_failure_rate`` (module docstring)."""
    eps = value_range * math.sqrt(math.log(2 * 2**n_labels * batch_size / false_failure_rate) / (2 * n_samples))
    return 2 * eps


@dataclass
class DecoderExample:
    """One decoder for the suite.

    Attributes:
        name: shown in test ids.
        make: ``n_labels -> Decoder`` (a cost matrix needs the number of labels).
        table: the per-row utility the decoder maximises, as ``sets [K, M] -> [K, K]``; None
            for decoders tuned for a corpus-level metric.
        corpus_metric: ``"macro-f1"`` or ``"micro-f1"`` for tuned decoders.
        n_samples: samples a sampling decoder draws (for :func:`sampling_tolerance`).
    """

    name: str
    make: Callable[[int], Decoder]
    table: UtilityTable | None = None
    corpus_metric: str | None = None
    n_samples: int | None = None

    def __repr__(self) -> str:
        return self.name


def expected_utilities(dist: JointLabelDistribution, table: UtilityTable) -> tuple[torch.Tensor, torch.Tensor]:
    """All sets ``[K, M]`` and the exact expected utility of each, ``[B, K]``; for a
    distribution without the empty set (``excludes_empty``) the empty set scores ``-inf``:
    decoders must return the best non-empty set."""
    sets, probs = enumerate_probs(dist)
    expected = probs @ table(sets).double().T
    if dist.excludes_empty:
        expected[:, sets.sum(-1) == 0] = -torch.inf
    return sets, expected


def check_maximises_expected_utility(example: DecoderExample, dist: JointLabelDistribution) -> None:
    """Exact for this distribution (``is_exact``): the decoder's set is optimal to 1e-9.
    Otherwise within :func:`sampling_tolerance` (sampling decoders) or
    ``APPROXIMATE_TOLERANCE`` times the utility range."""
    decoder = example.make(dist.n_labels)
    sets, expected = expected_utilities(dist, example.table)
    chosen = decoder.decode(dist).double()
    assert chosen.shape == (dist.batch_size, dist.n_labels), f"{example.name}: shape {tuple(chosen.shape)}"
    assert ((chosen == 0) | (chosen == 1)).all(), f"{example.name}: predictions must be 0/1"
    if dist.excludes_empty:
        assert (chosen.sum(-1) > 0).all(), f"{example.name}: an empty set for {type(dist).__name__}, which excludes it"
    index = (chosen @ (2 ** torch.arange(dist.n_labels, dtype=torch.float64))).long()
    gap = (expected.max(-1).values - expected.gather(1, index[:, None]).squeeze(1)).max().item()
    value_range = (lambda t: (t.max() - t.min()).item())(example.table(sets).double()) or 1.0
    if decoder.is_exact(dist):
        limit = 1e-9 * max(1.0, value_range)
    elif example.n_samples is not None:
        limit = sampling_tolerance(example.n_samples, dist.n_labels, dist.batch_size, value_range)
    else:
        limit = APPROXIMATE_TOLERANCE * value_range
    assert gap <= limit, f"{example.name} on {type(dist).__name__}: expected utility {gap:.3g} below the best (limit {limit:.3g}, exact={decoder.is_exact(dist)})"


def _label_f1(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    tp = (y * pred).sum(0)
    denominator = y.sum(0) + pred.sum(0)
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def best_corpus_f1(marginals: np.ndarray, labels: np.ndarray, metric: str) -> float:
    """Brute force: the best macro-F1 over every per-label threshold, or the best micro-F1
    over every global threshold, of predictions ``marginals >= v`` (v a score or above all)."""
    if metric == "macro-f1":
        per_label = []
        for j in range(marginals.shape[1]):
            cuts = np.append(np.unique(marginals[:, j]), np.inf)
            per_label.append(max(_label_f1(labels[:, [j]], (marginals[:, [j]] >= v).astype(float))[0] for v in cuts))
        return float(np.mean(per_label))
    best = 0.0
    for v in np.append(np.unique(marginals), np.inf):
        pred = (marginals >= v).astype(float)
        tp, total = (pred * labels).sum(), pred.sum() + labels.sum()
        best = max(best, 2 * tp / total if total else 0.0)
    return best


def corpus_f1(labels: np.ndarray, pred: np.ndarray, metric: str) -> float:
    if metric == "macro-f1":
        return float(_label_f1(labels, pred).mean())
    total = pred.sum() + labels.sum()
    return float(2 * (pred * labels).sum() / total) if total else 0.0


def check_tuned_on_heldout(example: DecoderExample, dist: JointLabelDistribution, seed: int = 0) -> None:
    """Fitted on (marginals, labels sampled from ``dist``), the decoder's predictions for
    ``dist`` reach the brute-force best corpus F1 on those labels; its state survives JSON."""
    import json

    torch.manual_seed(seed)
    labels = dist.sample().double().numpy()  # [B, M]: one draw per row
    torch.manual_seed(seed + 1)  # Monte Carlo marginals: the same draw for fit and decode
    marginals = dist.marginals().double().numpy()
    decoder = example.make(dist.n_labels).fit(marginals, labels)
    torch.manual_seed(seed + 1)
    pred = decoded = decoder.decode(dist).double().numpy()
    if dist.excludes_empty:
        # Rows the thresholds leave empty get the label of highest marginal (the best
        # non-empty completion); the thresholds themselves are checked on the raw decisions.
        assert (pred.sum(1) > 0).all(), f"{example.name}: an empty set for a distribution that excludes it"
        raw = decoder._decode(dist).double().numpy()
        completed = raw.sum(1) > 0
        assert np.array_equal(pred[completed], raw[completed]), f"{example.name}: non-empty rows changed"
        assert (pred[~completed].argmax(1) == marginals[~completed].argmax(1)).all() and (pred[~completed].sum(1) == 1).all()
        pred = raw
    got, best = corpus_f1(labels, pred, example.corpus_metric), best_corpus_f1(marginals, labels, example.corpus_metric)
    assert abs(got - best) <= 1e-12, f"{example.name}: held-out {example.corpus_metric} {got} < best {best}"
    reloaded = example.make(dist.n_labels).load_state(json.loads(json.dumps(decoder.state())))
    torch.manual_seed(seed + 1)
    assert np.array_equal(reloaded.decode(dist).double().numpy(), decoded), f"{example.name}: state round trip changed predictions"


def naive_nearest_neighbour_cost(a: torch.Tensor, b: torch.Tensor, matrix: torch.Tensor, empty_cost: float) -> float:
    """The set cost of :class:`comorbid.decoders.costs.MatrixCost` from its definition, on two
    0/1 vectors ``[M]`` (for tests)."""
    predicted = [i for i in range(len(a)) if a[i]]
    true = [j for j in range(len(b)) if b[j]]
    total = 0.0
    for i in predicted:
        total += min((matrix[i, j].item() for j in true), default=empty_cost)
    for j in true:
        total += min((matrix[i, j].item() for i in predicted), default=empty_cost)
    return total
