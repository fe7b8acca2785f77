"""Does modelling label dependence pay on this data, and for which metric? (``comorbid inspect``)

Three kinds of evidence, all from the rows of one labelled data set:

1. **Label statistics** (no model): cardinality, distinct label sets, pairwise co-occurrence
   and mutual information, *exclusions* (two frequent codes that never appear together although
   independence would put them together several times).
2. **Held-out conditional dependence**: on an inner split of the rows (80/20, iteratively
   stratified), the mean test log-likelihood per row of the joint model (the default chain)
   minus that of the independent model with the same encoder and training settings, overall
   and per code (the chain's factor ``log p(y_j | x, y_<j)`` against ``log p(y_j | x)``). The
   marginal co-occurrence of point 1 may be explained by the note itself; this is what is left
   given x (Dembczynski, Waegeman, Cheng & Huellermeier, 2012, "On label dependence and loss
   minimization in multi-label classification", Machine Learning 88: marginal vs conditional
   dependence).
3. **Predicted gain of joint decoding per metric**: on the held-out rows' inputs, the expected
   utility *under the fitted joint model* of the Bayes decoder of each metric minus that of the
   marginals thresholded at 1/2 (the ``hamming`` decoder). Per-row metrics (subset accuracy,
   instance F1, Hamming) are estimated with Monte Carlo label sets drawn from the model (drawn
   with a seed of their own, so that the decoders' own Monte Carlo estimates do not judge
   themselves); micro-F1 from the marginals, as the ratio of expected pooled counts (exact
   for the numerator and the denominator; the ratio is what a large corpus averages to), its
   decoder being the one shared threshold that maximises it (:func:`best_f1_threshold` on the
   model's marginals as fractional labels). Beside it, the same difference observed with the
   held-out rows' gold labels (noisier: a few hundred rows).

A recommendation follows: the joint model if its held-out log-likelihood gain is more than two
standard errors above zero, else the independent one; per metric, its Bayes decoder if the
predicted gain is above :data:`MATERIAL_GAIN` and two standard errors, else thresholded
marginals (``hamming``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from comorbid.data.dataset import MultiLabelDataset
from comorbid.data.splits import train_validation_split
from comorbid.decoders import get_decoder
from comorbid.decoders.thresholds import best_f1_threshold
from comorbid.distributions.chain import ChainBernoulli
from comorbid.distributions.independent import IndependentBernoulli
from comorbid.distributions.nonempty import NonEmpty
from comorbid.heads.chain import mutual_information
from comorbid.metrics.utility import utility_from_counts
from comorbid.model import MultiLabelModel

#: The metrics whose gain is predicted, and the Bayes decoder of each (``hamming`` thresholds
#: the marginals at 1/2: the baseline every gain is measured against).
METRIC_DECODERS = {"subset_accuracy": "subset", "instance_f1": "instance-f1", "micro_f1": "micro-f1",
                   "hamming": "hamming"}
#: Per-row utilities of :mod:`comorbid.metrics.utility` behind the per-row metrics.
ROW_UTILITIES = {"subset_accuracy": "subset", "instance_f1": "instance-f1", "hamming": "hamming"}
#: A predicted gain below this (absolute, in the metric's units: one point) is not worth a decoder change.
MATERIAL_GAIN = 0.01
#: Pairwise statistics (mutual information, exclusions) are computed among at most this many of
#: the most frequent labels (a dense ``[L, L]`` table; at thousands of codes the rare ones say
#: little about pairs anyway).
MAX_PAIR_LABELS = 500


# ---------------------------------------------------------------------------------- results
@dataclass
class LabelPair:
    """Two labels and how they go together in the data."""

    first: str
    second: str
    count_first: int
    count_second: int
    together: int
    #: rows expected together under independence: ``count_first * count_second / N``
    expected: float
    #: mutual information of the two binary labels, nats (add-1/2 smoothed 2x2 table)
    mutual_information: float


@dataclass
class LabelStatistics:
    """What the label matrix alone says."""

    rows: int
    labels: int
    cardinality: float
    density: float
    distinct_sets: int
    #: share of rows whose label set occurs once in the data
    unique_set_rows: float
    empty_rows: int
    max_labels_per_row: int
    #: label-set sizes: ``size_counts[k]`` rows with k labels
    size_counts: list[int]
    #: labels the pairwise statistics cover (the most frequent, at most MAX_PAIR_LABELS)
    pair_labels: int
    #: pairs of largest mutual information
    top_pairs: list[LabelPair]
    #: frequent pairs never seen together although independence expects them >= 3 times
    exclusions: list[LabelPair]
    n_exclusions: int
    #: sum over the covered pairs of their mutual information (nats)
    total_pairwise_mi: float


@dataclass
class Dependence:
    """Held-out log-likelihood of the joint model against the independent one."""

    heldout_rows: int
    train_rows: int
    joint_model: str
    joint_log_likelihood: float
    independent_log_likelihood: float
    #: mean per row of joint minus independent log p(y | x), nats, and its standard error
    gain: float
    gain_se: float
    #: per code (where both models factor by code): label -> mean gain per row, nats
    per_code: dict[str, float] = field(default_factory=dict)


@dataclass
class MetricGain:
    """Predicted (and observed on the inner held-out rows) gain of one metric's Bayes decoder
    over thresholded marginals. Every value is "higher is better" (Hamming: 1 - Hamming loss)."""

    metric: str
    decoder: str
    expected_baseline: float
    expected_decoder: float
    predicted_gain: float
    predicted_gain_se: float
    observed_baseline: float
    observed_decoder: float
    observed_gain: float


@dataclass
class Recommendation:
    """The model and decoder to use for one metric, with the reason in words."""

    metric: str
    model: str
    decoder: str
    reason: str


@dataclass
class Inspection:
    """Everything ``comorbid inspect`` reports."""

    data: str
    statistics: LabelStatistics
    dependence: Dependence
    gains: list[MetricGain]
    recommendations: list[Recommendation]
    samples: int
    seed: int
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------- label statistics
def label_statistics(labels: np.ndarray, label_names: list[str], top: int = 15,
                     max_pair_labels: int = MAX_PAIR_LABELS, min_expected: float = 3.0) -> LabelStatistics:
    """Counts and pairwise statistics of a label matrix ``[N, M]``.

    Exclusions: pairs seen together in no row although ``count_a * count_b / N >= min_expected``
    (under independence a zero has probability about ``exp(-min_expected)``, 5% at 3), ranked
    by that expectation.
    """
    y = np.asarray(labels, dtype=np.int8)
    n, m = y.shape
    sizes = y.sum(1).astype(np.int64)
    if n:
        _, inverse, set_counts = np.unique(y, axis=0, return_inverse=True, return_counts=True)
        unique_rows = float((set_counts[np.asarray(inverse).ravel()] == 1).mean())
        distinct = len(set_counts)
    else:
        unique_rows, distinct = 0.0, 0
    counts = y.sum(0).astype(np.int64)
    covered = np.lexsort((np.arange(m), -counts))[:max_pair_labels]
    covered = covered[counts[covered] > 0]
    pairs: list[LabelPair] = []
    exclusions: list[LabelPair] = []
    total_mi = 0.0
    if len(covered) >= 2:
        sub = y[:, covered].astype(np.float64)
        together = sub.T @ sub
        mi = mutual_information(sub)
        upper = np.triu(np.ones_like(mi, dtype=bool), 1)
        total_mi = float(mi[upper].sum())
        c = counts[covered]
        expected = np.outer(c, c) / max(n, 1)

        def pair(a: int, b: int) -> LabelPair:
            return LabelPair(label_names[covered[a]], label_names[covered[b]], int(c[a]), int(c[b]),
                             int(together[a, b]), float(expected[a, b]), float(mi[a, b]))

        order = np.argsort(-np.where(upper, mi, -1.0), axis=None, kind="stable")
        for flat in order[:top]:
            a, b = np.unravel_index(flat, mi.shape)
            if not upper[a, b] or mi[a, b] <= 0:
                break
            pairs.append(pair(a, b))
        excluded = upper & (together == 0) & (expected >= min_expected)
        rows, cols = np.nonzero(excluded)
        ranked = np.argsort(-expected[rows, cols], kind="stable")
        exclusions = [pair(rows[i], cols[i]) for i in ranked[:top]]
        n_excluded = int(len(rows))
    else:
        n_excluded = 0
    return LabelStatistics(
        rows=n, labels=m, cardinality=float(sizes.mean()) if n else 0.0,
        density=float(sizes.mean() / m) if n and m else 0.0, distinct_sets=distinct, unique_set_rows=unique_rows,
        empty_rows=int((sizes == 0).sum()), max_labels_per_row=int(sizes.max()) if n else 0,
        size_counts=np.bincount(sizes, minlength=1).tolist() if n else [0], pair_labels=int(len(covered)),
        top_pairs=pairs, exclusions=exclusions, n_exclusions=n_excluded, total_pairwise_mi=total_mi,
    )


# ------------------------------------------------------------------------- held-out dependence
def per_label_log_prob(dist, value: torch.Tensor) -> torch.Tensor | None:
    """``log p(y_j | x, ...)`` of each label ``[B, M]`` where ``dist`` factors by label: a chain
    (its factor given the earlier labels), an independent model (its marginal); ``None`` for
    other models. Conditioning on ``y != 0`` adds a per-row term that is not in these."""
    base = dist.base if isinstance(dist, NonEmpty) else dist
    value = value.to(torch.get_default_dtype())
    if isinstance(base, IndependentBernoulli):
        return -F.binary_cross_entropy_with_logits(base.logits, value, reduction="none")
    if isinstance(base, ChainBernoulli):
        ordered = value[:, base.order]
        logits = base.chain_logits(ordered)
        terms = -F.binary_cross_entropy_with_logits(logits, ordered, reduction="none")
        out = torch.empty_like(terms)
        out[:, base.order] = terms
        return out
    return None


@torch.no_grad()
def heldout_dependence(joint: MultiLabelModel, independent: MultiLabelModel, heldout: MultiLabelDataset,
                       train_rows: int, batch_size: int = 256) -> Dependence:
    """Mean held-out ``log p(y | x)`` of both models on ``heldout`` and their paired difference."""
    rows_joint, rows_independent, per_code = [], [], []
    factored = True
    batches = zip(joint.distributions(heldout, batch_size), independent.distributions(heldout, batch_size))
    for start, (dist_joint, dist_independent) in zip(range(0, len(heldout), batch_size), batches):
        y = torch.as_tensor(heldout.labels[start : start + batch_size]).to(torch.get_default_dtype())
        rows_joint.append(dist_joint.log_prob(y).double().numpy())
        rows_independent.append(dist_independent.log_prob(y).double().numpy())
        terms_joint, terms_independent = per_label_log_prob(dist_joint, y), per_label_log_prob(dist_independent, y)
        if terms_joint is None or terms_independent is None:
            factored = False
        elif factored:
            per_code.append((terms_joint - terms_independent).double().sum(0).numpy())
    joint_ll, independent_ll = np.concatenate(rows_joint), np.concatenate(rows_independent)
    difference = joint_ll - independent_ll
    n = len(difference)
    codes = {}
    if factored and per_code:
        gains = np.sum(per_code, axis=0) / n
        codes = {name: float(g) for name, g in zip(heldout.label_names, gains)}
    return Dependence(
        heldout_rows=n, train_rows=train_rows, joint_model=joint.model,
        joint_log_likelihood=float(joint_ll.mean()), independent_log_likelihood=float(independent_ll.mean()),
        gain=float(difference.mean()), gain_se=float(difference.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
        per_code=codes,
    )


# --------------------------------------------------------------------------- predicted gains
def _row_utilities(name: str, decided: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """``u(decided_b, samples_sb)`` ``[S, B]`` from the three counts (no ``[S, B, M]`` product)."""
    decided = decided.to(samples.dtype)
    intersection = torch.einsum("sbm,bm->sb", samples, decided)
    return utility_from_counts(name, intersection, decided.sum(-1)[None, :], samples.sum(-1), samples.shape[-1])


@torch.no_grad()
def predicted_gains(joint: MultiLabelModel, heldout: MultiLabelDataset, samples: int = 200, seed: int = 0,
                    batch_size: int | None = None) -> list[MetricGain]:
    """Per metric of :data:`METRIC_DECODERS`: the expected value under ``joint`` of its Bayes
    decoder and of thresholded marginals on ``heldout``'s inputs, and the same observed with
    ``heldout``'s gold labels."""
    m = heldout.n_labels
    if batch_size is None:  # keep the [S, B, M] samples of one batch near 32 MiB
        batch_size = max(1, min(256, (1 << 23) // max(1, samples * m)))
    decoders = {metric: get_decoder(spec).bind(list(joint.label_names_))
                for metric, spec in METRIC_DECODERS.items() if metric in ROW_UTILITIES}
    expected = {metric: [] for metric in decoders}  # per batch: [S, B] utilities of the decoder
    baseline = {metric: [] for metric in decoders}
    observed = {metric: [] for metric in decoders}
    observed_baseline = {metric: [] for metric in decoders}
    marginals, hamming_sets = [], []
    for start, dist in zip(range(0, len(heldout), batch_size), joint.distributions(heldout, batch_size)):
        gold = torch.as_tensor(heldout.labels[start : start + batch_size]).to(torch.get_default_dtype())
        decided = {metric: decoder.decode(dist) for metric, decoder in decoders.items()}
        marginals.append(dist.marginals().double().numpy())
        thresholded = decided["hamming"]
        hamming_sets.append(thresholded.numpy())
        # fresh draws, independent of the Monte Carlo estimates the decoders used
        drawn = dist.with_seed(seed + 7919).sample((samples,)).to(torch.get_default_dtype())
        for metric, chosen in decided.items():
            name = ROW_UTILITIES[metric]
            expected[metric].append(_row_utilities(name, chosen, drawn).double().numpy())
            baseline[metric].append(_row_utilities(name, thresholded, drawn).double().numpy())
            observed[metric].append(_row_utilities(name, chosen, gold[None]).double().numpy()[0])
            observed_baseline[metric].append(_row_utilities(name, thresholded, gold[None]).double().numpy()[0])
    gains = []
    for metric, spec in METRIC_DECODERS.items():
        if metric == "micro_f1":
            gains.append(_micro_f1_gain(np.concatenate(marginals), np.concatenate(hamming_sets), heldout.labels))
            continue
        decoder_values, baseline_values = np.concatenate(expected[metric], 1), np.concatenate(baseline[metric], 1)
        # the gain per row, averaged over that row's samples: rows are the independent units
        per_row = (decoder_values - baseline_values).mean(0)
        se = float(per_row.std(ddof=1) / math.sqrt(len(per_row))) if len(per_row) > 1 else float("nan")
        got, got_baseline = np.concatenate(observed[metric]), np.concatenate(observed_baseline[metric])
        gains.append(MetricGain(metric, spec, float(baseline_values.mean()), float(decoder_values.mean()),
                                float(per_row.mean()), se, float(got_baseline.mean()), float(got.mean()),
                                float(got.mean() - got_baseline.mean())))
    return gains


def micro_f1_threshold(marginals: np.ndarray) -> float:
    """The one threshold on the marginals that maximises the model's expected micro-F1 (ratio of
    expected pooled counts): :func:`best_f1_threshold` with the marginals as fractional labels."""
    return best_f1_threshold(marginals.ravel(), marginals.ravel())[0]


def expected_micro_f1(marginals: np.ndarray, decided: np.ndarray) -> float:
    """``2 E[TP] / (|decided| + E[|y|])`` under independent-or-not labels with these marginals
    (expectations of sums need only the marginals)."""
    denominator = decided.sum() + marginals.sum()
    return float(2.0 * (marginals * decided).sum() / denominator) if denominator > 0 else 1.0


def _micro_f1(gold: np.ndarray, decided: np.ndarray) -> float:
    denominator = decided.sum() + gold.sum()
    return float(2.0 * (gold * decided).sum() / denominator) if denominator > 0 else 1.0


def _micro_f1_gain(marginals: np.ndarray, thresholded: np.ndarray, gold: np.ndarray) -> MetricGain:
    threshold = micro_f1_threshold(marginals)
    decided = (marginals > threshold).astype(np.float64)
    thresholded = thresholded.astype(np.float64)
    gold = gold.astype(np.float64)
    base, tuned = expected_micro_f1(marginals, thresholded), expected_micro_f1(marginals, decided)
    observed_base, observed = _micro_f1(gold, thresholded), _micro_f1(gold, decided)
    # no row-wise standard error for a ratio; a delta-method one is not worth its formula here
    return MetricGain("micro_f1", f"micro-f1 (threshold {threshold:.3f})", base, tuned, tuned - base, 0.0,
                      observed_base, observed, observed - observed_base)


# ----------------------------------------------------------------------------- recommendation
def recommend(dependence: Dependence, gains: list[MetricGain]) -> list[Recommendation]:
    """Per metric: the model (joint if its held-out log-likelihood gain is above two standard
    errors, else independent) and the decoder (the metric's Bayes decoder if its predicted gain
    is material, else thresholded marginals)."""
    joint_pays = dependence.gain - 2 * dependence.gain_se > 0
    model = dependence.joint_model if joint_pays else "independent"
    why_model = (f"held-out log-likelihood +{dependence.gain:.3f} ± {dependence.gain_se:.3f} nats/row over independent"
                 if joint_pays else
                 f"held-out log-likelihood gain {dependence.gain:+.3f} ± {dependence.gain_se:.3f} nats/row is within noise")
    out = []
    for gain in gains:
        material = gain.predicted_gain > max(MATERIAL_GAIN, 2 * gain.predicted_gain_se)
        # under an independent model the Bayes decoder of subset accuracy is thresholding itself
        if gain.metric == "hamming" or (gain.metric == "subset_accuracy" and not joint_pays):
            material = False
        decoder = gain.decoder.split(" ")[0] if material else "hamming"
        why = (f"{why_model}; {decoder} is predicted to add {gain.predicted_gain:+.3f}" if material else
               f"{why_model}; joint decoding is predicted to add {gain.predicted_gain:+.3f}: thresholded marginals suffice")
        out.append(Recommendation(gain.metric, model, decoder, why))
    return out


# ---------------------------------------------------------------------------------- the whole
def inspect_dataset(dataset: MultiLabelDataset, make_joint: Callable[[], MultiLabelModel],
                    make_independent: Callable[[], MultiLabelModel], samples: int = 200, seed: int = 0,
                    validation_fraction: float = 0.2, progress=None) -> Inspection:
    """Label statistics of all of ``dataset``; both models fitted on an inner split of its rows
    (``1 - validation_fraction``), dependence and gains measured on the rest.

    The fitted models and the split stay on the result as ``joint_model_``,
    ``independent_model_``, ``train_rows_``, ``heldout_rows_`` (not serialised), so a caller can
    reuse them (``benchmarks/inspect_validation.py`` scores the joint model on a test split).
    """
    import time

    if dataset.n_labels == 0:
        raise ValueError(f"{dataset.name} has no labels to inspect")
    if samples < 1:
        raise ValueError(f"Expected samples >= 1, got {samples}")
    start = time.perf_counter()
    statistics = label_statistics(dataset.labels, list(dataset.label_names))
    train_rows, heldout_rows = train_validation_split(dataset.labels, validation_fraction, seed)
    train, heldout = dataset.subset(train_rows), dataset.subset(heldout_rows)
    joint = make_joint().fit(train, progress=progress, description="joint model")
    independent = make_independent().fit(train, progress=progress, description="independent model")
    dependence = heldout_dependence(joint, independent, heldout, len(train_rows))
    gains = predicted_gains(joint, heldout, samples, seed)
    result = Inspection(dataset.name, statistics, dependence, gains, recommend(dependence, gains), samples, seed,
                        time.perf_counter() - start)
    result.joint_model_, result.independent_model_ = joint, independent
    result.train_rows_, result.heldout_rows_ = train_rows, heldout_rows
    return result


def model_factories(model: str = "chain", encoder: str = "auto", head_options: dict | None = None,
                    encoder_options: dict | None = None, train: Any = None, nonempty: bool | str = "auto",
                    ) -> tuple[Callable[[], MultiLabelModel], Callable[[], MultiLabelModel]]:
    """``(make_joint, make_independent)``: the joint model as configured, and the independent
    model with the same encoder, encoder options, training settings and non-empty conditioning."""

    def make_joint() -> MultiLabelModel:
        return MultiLabelModel(model, encoder, head_options, encoder_options, train, nonempty=nonempty)

    def make_independent() -> MultiLabelModel:
        return MultiLabelModel("independent", encoder, None, encoder_options, train, nonempty=nonempty)

    return make_joint, make_independent


def factories_like(saved: MultiLabelModel) -> tuple[Callable[[], MultiLabelModel], Callable[[], MultiLabelModel]]:
    """:func:`model_factories` with the configuration of a saved model (its weights are not
    used: they may have seen the rows being inspected)."""
    return model_factories(saved.model, saved.encoder_name, saved.head_options, saved.encoder_options,
                           saved.train_config_, saved.nonempty)
