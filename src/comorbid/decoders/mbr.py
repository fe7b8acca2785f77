"""Minimum-Bayes-risk decoding for any cost: ``argmin_h E_{y ~ p(y|x)} cost(h, y)``.

The expected cost of a candidate set is estimated on ``n_samples`` label sets drawn from the
distribution; the candidates are those samples plus structured sets (the empty set, the
marginals thresholded at 1/2, the mode, and the top-k sets by marginal for every ``k`` up to one
more than the largest sample; of the samples, the ``max_candidates`` most frequent distinct
ones), so the answer is never worse than those simple rules by more
than the estimation error. This is MBR decoding over a sampled hypothesis space (Kumar &
Byrne, 2004, HLT-NAACL, "Minimum Bayes-risk decoding for statistical machine translation";
for multi-label sets: Dembczynski, Waegeman, Cheng & Huellermeier, 2012, MLJ 88).

Up to ``enumerate_max_labels`` labels the decoder instead enumerates all ``2^M`` sets with their
exact probabilities (from ``log_prob``) as both candidates and truths: exact for any
distribution and any cost.

Cost of the sampling path per row: drawing ``n`` samples (``O(n M)`` for independent labels),
then a ``[K, U]`` cost table over the ``K <= max_candidates + k + 3`` candidates and the
``U <= n`` distinct samples,
restricted to the labels that occur in any of them (so ``O(K U M')`` with ``M'`` those labels,
for the built-in costs; a Python cost function sees all ``M``). Samples are drawn in chunks so
that at most ``2^24`` label values are held at once. The draws use common random numbers seeded
by the distribution's seed and the decoder's ``seed`` (stream ``mbr-<seed>``, see
:mod:`comorbid.distributions.noise`): a row's answer does not depend on the rest of its batch,
and the global generator is not touched.
"""

from __future__ import annotations

from typing import Sequence

import torch

from comorbid.decoders.base import Decoder
from comorbid.decoders.costs import SetCost, cost_from_spec
from comorbid.distributions.base import JointLabelDistribution, all_label_sets

DEFAULT_SAMPLES = 1000
DEFAULT_ENUMERATE_MAX_LABELS = 10
#: Distinct samples kept as candidates (the most frequent); all samples still estimate costs.
DEFAULT_MAX_CANDIDATES = 128
#: Top-k candidate sets go up to this size at most.
MAX_STRUCTURED_SIZE = 256
_SAMPLE_CHUNK_ENTRIES = 1 << 24


def expected_costs_by_enumeration(dist: JointLabelDistribution, cost: SetCost) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``2^M`` sets ``[K, M]`` and their exact expected costs ``[B, K]`` (small M only)."""
    sets = all_label_sets(dist.n_labels, dtype=torch.float64)
    with torch.no_grad():
        log_probs = dist.log_prob(sets[:, None, :].expand(-1, dist.batch_size, -1).to(torch.get_default_dtype()))
    probs = log_probs.T.exp().double()  # [B, K]
    table = torch.as_tensor(cost(sets, sets)).double()  # [candidate, truth]
    return sets, probs @ table.T


def _draw(dist: JointLabelDistribution, n_samples: int, seed: int = 0) -> tuple[torch.Tensor, torch.device]:
    """``n_samples`` samples as ``[P, 3]`` (sample, row, label) indices of their ones (on the
    CPU), and the device the distribution samples on."""
    per_call = max(1, _SAMPLE_CHUNK_ENTRIES // max(dist.batch_size * dist.n_labels, 1))
    parts, device = [], torch.device("cpu")
    noise = dist.common_noise(f"mbr-{seed}", n_samples)
    for start in range(0, n_samples, per_call):
        count = min(per_call, n_samples - start)
        with torch.no_grad():
            samples = dist.sample_with(noise.part(start, count))
        device = samples.device
        ones = (samples > 0).nonzero()
        ones[:, 0] += start
        parts.append(ones.cpu())
    return (torch.cat(parts) if parts else torch.zeros(0, 3, dtype=torch.long)), device


def _unique_rows(sets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct rows of a 0/1 matrix ``[n, C]`` (in order of first appearance) and their counts.

    Written because ``torch.unique(dim=0)`` sorts whole rows and was the slowest step here:
    rows are packed into 31-bit words and merged into one integer key word by word.
    """
    n, c = sets.shape
    key = torch.zeros(n, dtype=torch.long)
    if c:
        padded = torch.nn.functional.pad(sets.long(), (0, (-c) % 31)).reshape(n, -1, 31)
        words = (padded << torch.arange(31)).sum(-1)  # [n, W], each < 2^31
        for w in range(words.shape[1]):
            key = torch.unique(key * (1 << 31) + words[:, w], return_inverse=True)[1]  # < n * 2^31
    distinct, inverse, counts = torch.unique(key, return_inverse=True, return_counts=True)
    first = torch.full((len(distinct),), n, dtype=torch.long).scatter_reduce_(0, inverse, torch.arange(n), "amin")
    order = first.argsort()
    return sets[first[order]], counts[order]


def _try_mode(dist: JointLabelDistribution) -> torch.Tensor | None:
    try:
        with torch.no_grad():
            return dist.mode().detach().cpu()
    except NotImplementedError:
        return None


def minimum_bayes_risk(
    dist: JointLabelDistribution,
    cost: SetCost,
    n_samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    enumerate_max_labels: int = DEFAULT_ENUMERATE_MAX_LABELS,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
) -> torch.Tensor:
    """The set of least expected ``cost`` for each row, ``[B, M]`` (see the module docstring).

    Ties go to the first candidate: in enumeration order, else structured sets before samples.
    """
    b, m = dist.batch_size, dist.n_labels
    dtype = torch.get_default_dtype()
    if m <= enumerate_max_labels:
        sets, expected = expected_costs_by_enumeration(dist, cost)
        if dist.excludes_empty:  # the best non-empty set (row 0 of all_label_sets is the empty set)
            expected[:, 0] = torch.inf
        return sets[expected.argmin(1)].to(dtype)
    if n_samples < 1:
        raise ValueError(f"Expected n_samples >= 1 for sampling MBR, got {n_samples}")
    return _sampled_minimum_bayes_risk(dist, cost, n_samples, max_candidates, seed)


def _sampled_minimum_bayes_risk(dist: JointLabelDistribution, cost: SetCost, n_samples: int,
                                max_candidates: int, seed: int = 0) -> torch.Tensor:
    b, m = dist.batch_size, dist.n_labels
    dtype = torch.get_default_dtype()
    ones, device = _draw(dist, n_samples, seed)
    if "marginals" in dist.exact:
        with torch.no_grad():
            marginals = dist.marginals().detach().cpu().double()
    else:  # Monte Carlo marginals would cost another round of sampling: use these samples
        marginals = torch.bincount(ones[:, 1] * m + ones[:, 2], minlength=b * m).reshape(b, m).double() / n_samples
    mode = _try_mode(dist)
    ones = ones[ones[:, 1].argsort(stable=True)]
    per_row = torch.bincount(ones[:, 1], minlength=b).tolist()
    out = torch.zeros(b, m, dtype=dtype)
    for row, row_ones in enumerate(ones.split(per_row)):
        sample_ids, labels = row_ones[:, 0], row_ones[:, 2]
        sizes = torch.bincount(sample_ids, minlength=n_samples)
        k_max = min(m, MAX_STRUCTURED_SIZE, int(sizes.max()) + 1)
        ranked = marginals[row].argsort(descending=True, stable=True)[:k_max]
        fixed = [(marginals[row] > 0.5).nonzero().flatten()]
        if mode is not None:
            fixed.append(mode[row].nonzero().flatten())
        wanted = torch.cat([labels, ranked, *fixed])
        local_cost = cost.restrict(torch.unique(wanted), m)
        columns = torch.unique(wanted) if local_cost is not None else torch.arange(m)
        local_cost = local_cost if local_cost is not None else cost
        c = len(columns)

        def local(label_ids):
            return torch.searchsorted(columns, label_ids.contiguous())

        evidence = torch.zeros(n_samples, c, dtype=torch.uint8)
        evidence[sample_ids, local(labels)] = 1
        truths, counts = _unique_rows(evidence)
        structured = torch.zeros(1 + len(fixed) + k_max, c, dtype=torch.uint8)  # row 0: the empty set
        for i, labels_on in enumerate(fixed, start=1):
            structured[i, local(labels_on)] = 1
        triangle = torch.ones(k_max, k_max, dtype=torch.uint8).tril()  # row k-1: the top-k set
        structured[1 + len(fixed) :, local(ranked)] = triangle
        frequent = counts.argsort(descending=True, stable=True)[:max_candidates]
        candidates = torch.cat([structured, truths[frequent]]).double()
        table = torch.as_tensor(local_cost(candidates, truths.double())).double()  # [K, U]
        expected = table @ (counts.double() / n_samples)
        if dist.excludes_empty:  # only non-empty candidates (the samples are all non-empty)
            expected = torch.where(candidates.sum(-1) == 0, torch.inf, expected)
        out[row, columns] = candidates[expected.argmin()].to(dtype)
    return out.to(device)


class MBRDecoder(Decoder):
    """Minimum expected cost for a given cost (see the module docstring).

    Args:
        cost: ``"icd-tree"`` (default), a utility name (cost ``1 - u``), a CSV cost-matrix file,
            a :class:`~comorbid.decoders.costs.SetCost`, or a function
            ``(y_hat [K, M], y [S, M]) -> [K, S]``.
        n_samples: label sets drawn per row to estimate expected costs (and as candidates).
        seed: seed of those draws (the global RNG is left as it was).
        enumerate_max_labels: up to this many labels, enumerate all sets instead (exact).
        max_candidates: distinct samples kept as candidates, the most frequent first.
    """

    name = "mbr"
    metric = "-cost"

    def __init__(self, cost="icd-tree", n_samples: int = DEFAULT_SAMPLES, seed: int = 0,
                 enumerate_max_labels: int = DEFAULT_ENUMERATE_MAX_LABELS,
                 max_candidates: int = DEFAULT_MAX_CANDIDATES):
        if n_samples < 1:
            raise ValueError(f"Expected n_samples >= 1, got {n_samples}")
        self.max_candidates = max_candidates
        self.cost = cost_from_spec(cost)
        self.n_samples = n_samples
        self.seed = seed
        self.enumerate_max_labels = enumerate_max_labels

    @property
    def spec(self) -> str:
        return f"mbr={self.cost.spec}"

    def bind(self, label_names: Sequence[str]) -> "MBRDecoder":
        self.cost = self.cost.bind(label_names)
        return self

    def is_exact(self, dist: JointLabelDistribution) -> bool:
        return dist.n_labels <= self.enumerate_max_labels and "log_prob" in dist.exact

    def _decode(self, dist: JointLabelDistribution) -> torch.Tensor:
        return minimum_bayes_risk(dist, self.cost, self.n_samples, self.seed, self.enumerate_max_labels,
                                  self.max_candidates)
