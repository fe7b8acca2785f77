"""Conformance checks every joint label distribution and decoder must pass.

Each check takes a distribution (or a way to build one) and compares it against brute-force
enumeration of all 2^M label sets, which is feasible for M <= 8. A users' plugin passes the same
suite by adding one :class:`DistributionExample`.

Statistical checks use fixed seeds; their false-failure rate (the chance a correct
implementation fails with a fresh seed) is stated next to each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from scipy import stats

from comorbid.distributions.base import JointLabelDistribution, all_label_sets, count_marginals_from_sets

#: Chi-square tests of samples against log_prob reject a correct sampler with this probability.
GOODNESS_OF_FIT_ALPHA = 1e-4


@dataclass
class DistributionExample:
    """How to build random instances of one distribution for the suite.

    Attributes:
        name: shown in test ids.
        parameters: ``(batch_size, n_labels, scale, generator) -> tuple of float64 tensors``; larger
            ``scale`` means sharper distributions (``1e4`` for the extreme-value checks).
        build: ``(*parameters) -> JointLabelDistribution``; differentiable in its parameters.
        mc_tolerance: absolute tolerance for methods the distribution does not flag exact.
    """

    name: str
    parameters: Callable[[int, int, float, torch.Generator], tuple[torch.Tensor, ...]]
    build: Callable[..., JointLabelDistribution]
    mc_tolerance: float = 0.05

    def make(self, batch_size: int = 4, n_labels: int = 5, scale: float = 1.0, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        params = self.parameters(batch_size, n_labels, scale, generator)
        return self.build(*params), params

    def __repr__(self) -> str:
        return self.name


def enumerate_probs(dist: JointLabelDistribution) -> tuple[torch.Tensor, torch.Tensor]:
    """All 2^M sets ``[K, M]`` and their probabilities ``[B, K]`` from ``log_prob`` alone."""
    sets = all_label_sets(dist.n_labels, dtype=torch.float64)
    with torch.no_grad():
        probs = dist.log_prob(sets[:, None, :].expand(-1, dist.batch_size, -1)).T.exp()
    return sets, probs


def _close(name: str, got: torch.Tensor, want: torch.Tensor, dist: JointLabelDistribution, tolerance: float) -> None:
    atol = 1e-8 if name in dist.exact else tolerance
    error = (got.double() - want.double()).abs().max().item() if got.numel() else 0.0
    assert error <= atol, f"{type(dist).__name__}.{name}: max error {error:.3g} > {atol:.3g}"


def check_normalised(dist: JointLabelDistribution) -> None:
    _, probs = enumerate_probs(dist)
    total = probs.sum(-1)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-8), f"probabilities sum to {total.tolist()}"


def check_marginals(dist: JointLabelDistribution, tolerance: float) -> None:
    sets, probs = enumerate_probs(dist)
    _close("marginals", dist.marginals(), probs @ sets, dist, tolerance)


def check_count_marginals(dist: JointLabelDistribution, tolerance: float) -> None:
    sets, probs = enumerate_probs(dist)
    want = count_marginals_from_sets(sets, probs)
    got = dist.count_marginals()
    assert got.shape == want.shape, f"count_marginals shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    _close("count_marginals", got, want, dist, tolerance)
    size = dist.size_distribution()
    want_size = torch.stack([probs[:, sets.sum(-1) == s].sum(-1) for s in range(dist.n_labels + 1)], -1)
    _close("count_marginals", size, want_size, dist, tolerance)


def check_mode(dist: JointLabelDistribution, approximate_ratio: float = 0.9) -> None:
    """Exact: the mode's probability equals the largest (ties allowed). Approximate: on average
    at least ``approximate_ratio`` of it."""
    sets, probs = enumerate_probs(dist)
    mode = dist.mode()
    assert ((mode == 0) | (mode == 1)).all(), "mode must be 0/1"
    with torch.no_grad():
        got = dist.log_prob(mode).exp()
    best = probs.max(-1).values
    if "mode" in dist.exact:
        assert torch.allclose(got, best, rtol=1e-6, atol=1e-12), f"mode probability {got.tolist()} < {best.tolist()}"
    else:
        assert got.sum() >= approximate_ratio * best.sum(), f"approximate mode too poor: {got.sum()} vs {best.sum()}"


def check_nonempty_mode(dist: JointLabelDistribution, approximate_ratio: float = 0.9) -> None:
    """``nonempty_mode`` is the most probable set with at least one label (exact when
    ``exact_nonempty_mode``; otherwise on average at least ``approximate_ratio`` of it)."""
    if dist.n_labels == 0:
        return
    sets, probs = enumerate_probs(dist)
    mode = dist.nonempty_mode()
    assert (mode.sum(-1) >= 1).all(), "nonempty_mode returned an empty set"
    with torch.no_grad():
        got = dist.log_prob(mode).exp()
    best = probs[:, sets.sum(-1) > 0].max(-1).values
    if dist.exact_nonempty_mode:
        assert torch.allclose(got, best, rtol=1e-6, atol=1e-12), f"non-empty mode {got.tolist()} < {best.tolist()}"
    else:
        assert got.sum() >= approximate_ratio * best.sum(), f"approximate non-empty mode too poor: {got.sum()} vs {best.sum()}"


def check_log_prob_nonempty(dist: JointLabelDistribution) -> None:
    """``log_prob_nonempty`` is log P(y != 0) by enumeration, also for a sharpened copy whose
    p(0) may round to 1 (compared in log space, to 1e-6)."""
    sets, probs = enumerate_probs(dist)
    want = probs[:, sets.sum(-1) > 0].sum(-1)
    _close("log_prob", dist.log_prob_nonempty().exp(), want, dist, 1e-8)
    try:
        sharp = dist.tempered(0.02)
    except NotImplementedError:
        return
    log_probs = sharp.log_prob(sets[:, None, :].expand(-1, dist.batch_size, -1)).T  # [B, 2^M]
    want = torch.logsumexp(log_probs[:, sets.sum(-1) > 0], -1).double()
    got = sharp.log_prob_nonempty().double()
    finite = torch.isfinite(want)
    assert torch.equal(torch.isfinite(got), finite), f"log_prob_nonempty {got.tolist()} vs {want.tolist()}"
    assert torch.allclose(got[finite], want[finite], rtol=1e-6, atol=1e-6), f"{got.tolist()} vs {want.tolist()}"


def check_tempered(dist: JointLabelDistribution) -> None:
    """``tempered(1)`` is the same distribution; ``tempered(T)`` is normalised; at T = 1000 every
    set of the support (probability > 0 at T = 1) is within a factor 1.2 of uniform."""
    sets, probs = enumerate_probs(dist)
    same = enumerate_probs(dist.tempered(1.0))[1]
    assert torch.allclose(same, probs, rtol=1e-9, atol=1e-12), "tempered(1) changed the distribution"
    for temperature in (0.5, 3.0):
        check_normalised(dist.tempered(temperature))
    flat = enumerate_probs(dist.tempered(1000.0))[1]
    support = probs > 0
    uniform = 1.0 / support.sum(-1, keepdim=True)
    ratio = flat[support] / uniform.expand_as(flat)[support]
    assert (ratio > 1 / 1.2).all() and (ratio < 1.2).all(), "tempered(1000) is not close to uniform on the support"


def check_sample(dist: JointLabelDistribution, n_samples: int = 4000, seed: int = 0) -> None:
    """Samples are 0/1 of the right shape and pass a chi-square test against ``log_prob``
    (cells with expected count < 5 pooled), per row, at level ``GOODNESS_OF_FIT_ALPHA`` after a
    Bonferroni correction over rows."""
    torch.manual_seed(seed)
    samples = dist.sample((n_samples,))
    assert samples.shape == (n_samples, dist.batch_size, dist.n_labels), f"sample shape {tuple(samples.shape)}"
    assert ((samples == 0) | (samples == 1)).all(), "samples must be 0/1"
    sets, probs = enumerate_probs(dist)
    powers = 2 ** torch.arange(dist.n_labels, dtype=torch.float64)
    index = (samples.double() @ powers).long()  # [n, B]
    for row in range(dist.batch_size):
        observed = torch.bincount(index[:, row], minlength=len(sets)).double()
        expected = probs[row] * n_samples
        assert observed[expected == 0].sum() == 0, f"row {row}: sampled a set of probability 0"
        big = expected >= 5
        obs = torch.cat([observed[big], observed[~big].sum()[None]])
        exp = torch.cat([expected[big], expected[~big].sum()[None]])
        keep = exp > 0
        if keep.sum() < 2:
            continue
        statistic = ((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum().item()
        p_value = stats.chi2.sf(statistic, int(keep.sum()) - 1)
        assert p_value > GOODNESS_OF_FIT_ALPHA / dist.batch_size, f"row {row}: chi-square p = {p_value:.2e}"


def check_gradients(example: DistributionExample, n_labels: int = 4) -> None:
    """float64 gradcheck of log_prob with respect to every parameter."""
    generator = torch.Generator().manual_seed(1)
    params = tuple(p.detach().clone().requires_grad_(True) for p in example.parameters(3, n_labels, 1.0, generator))
    values = all_label_sets(n_labels, dtype=torch.float64)[torch.tensor([0, 3, 5, 2 ** n_labels - 1])]
    values = values[:, None, :].expand(-1, 3, -1)
    with torch.no_grad():  # sets outside the support (log_prob -inf) have no gradient to check
        values = values[torch.isfinite(example.build(*params).log_prob(values)).all(-1)]
    assert torch.autograd.gradcheck(lambda *p: example.build(*p).log_prob(values), params)


def check_extreme(example: DistributionExample, n_labels: int = 5) -> None:
    """Parameters of magnitude 1e4: log_prob, its gradient and every method stay finite."""
    dist, params = example.make(batch_size=3, n_labels=n_labels, scale=1e4, seed=2)
    params = tuple(p.detach().clone().requires_grad_(True) for p in params)
    dist = example.build(*params)
    values = all_label_sets(n_labels, dtype=torch.float64)[:, None, :].expand(-1, 3, -1)
    log_probs = dist.log_prob(values)
    assert not torch.isnan(log_probs).any(), "log_prob is NaN for extreme parameters"
    assert torch.isfinite(torch.logsumexp(log_probs, 0)).all(), "no finite log_prob for extreme parameters"
    top = log_probs.max(0).values.sum()
    top.backward()
    for p in params:
        assert torch.isfinite(p.grad).all(), "gradient not finite for extreme parameters"
    for method in (dist.marginals, dist.mode, dist.count_marginals):
        assert torch.isfinite(method()).all(), f"{method.__name__} not finite for extreme parameters"


def check_decoder(
    decoder, dist: JointLabelDistribution, utility: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    exact: bool = True, tolerance: float = 1e-9,
) -> None:
    """The decoder's choice attains the largest expected utility over all 2^M candidates
    (exact decoders to ``1e-9``; approximate ones within ``tolerance``)."""
    sets, probs = enumerate_probs(dist)
    table = utility(sets[:, None, :], sets[None, :, :]).double()  # [candidate, truth]
    expected = probs @ table.T  # [B, candidate]
    if dist.excludes_empty:  # the best non-empty set
        expected[:, sets.sum(-1) == 0] = -torch.inf
    chosen = decoder.decode(dist).double()
    assert chosen.shape == (dist.batch_size, dist.n_labels)
    powers = 2 ** torch.arange(dist.n_labels, dtype=torch.float64)
    index = (chosen @ powers).long()
    got = expected.gather(1, index[:, None]).squeeze(1)
    best = expected.max(-1).values
    gap = (best - got).max().item()
    limit = 1e-9 if exact else tolerance
    assert gap <= limit, f"{decoder!r}: expected utility {gap:.3g} below the best (limit {limit:.3g})"


def run_all(example: DistributionExample, sizes: Sequence[int] = (1, 3, 6)) -> None:
    """Every distribution check on ``example`` (handy for users' plugins)."""
    for m in sizes:
        for scale in (0.5, 3.0):
            dist, _ = example.make(n_labels=m, scale=scale)
            check_normalised(dist)
            check_marginals(dist, example.mc_tolerance)
            check_count_marginals(dist, example.mc_tolerance)
            check_mode(dist)
            check_nonempty_mode(dist)
            check_tempered(dist)
            check_log_prob_nonempty(dist)
            check_sample(dist)
    check_gradients(example)
    check_extreme(example)
