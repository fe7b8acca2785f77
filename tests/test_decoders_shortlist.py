"""Decoders at many labels: the per-row shortlist of instance F1 (GFM on the top-L labels),
what it reports, when it is exact, and that every registered decoder runs at M = 10,000."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import DETERMINISTIC

from comorbid.decoders import DECODERS, InstanceF1Decoder, MBRDecoder, get_decoder, gfm, top_k_sets
from comorbid.decoders.f_measure import shortlist_gfm
from comorbid.distributions import BernoulliMixture, ChainBernoulli, IndependentBernoulli, JointLabelDistribution
from comorbid.distributions.nonempty import NonEmpty

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.isolation import run_isolated  # noqa: E402


def _expected_f1(count_marginals, prob_empty, sets):
    """E[F1] of each row's set from full count marginals ``[B, M, M+1]`` (the GFM formula)."""
    m = count_marginals.shape[1]
    k = sets.sum(-1)  # [B]
    s = torch.arange(1, m + 1, dtype=count_marginals.dtype)
    weights = 2.0 / (s[None, :] + k[:, None])  # [B, s]
    per_label = (count_marginals[:, :, 1:] * weights[:, None, :]).sum(-1)  # [B, M]
    return torch.where(k == 0, prob_empty, (per_label * sets).sum(-1))


def _distributions(b, m, seed):
    g = torch.Generator().manual_seed(seed)
    independent = IndependentBernoulli(torch.randn(b, m, generator=g, dtype=torch.float64) * 2 - 1)
    mixture = BernoulliMixture(torch.randn(b, 3, generator=g, dtype=torch.float64),
                               torch.randn(b, 3, m, generator=g, dtype=torch.float64) * 2 - 1)
    return [independent, mixture, NonEmpty(independent), NonEmpty(mixture)]


@pytest.mark.parametrize("index", range(4))
def test_a_shortlist_holding_every_label_is_the_exact_gfm(index):
    dist = _distributions(16, 9, seed=3)[index]
    chosen, info = shortlist_gfm(dist, shortlist_size=9)
    prob_empty = torch.full((16,), -torch.inf, dtype=torch.float64) if dist.excludes_empty else dist.size_distribution()[:, 0]
    assert torch.equal(chosen, gfm(dist.count_marginals(), prob_empty))
    assert info.exact.all() and (info.loss_bound < 1e-12).all() and (info.outside_mass == 0).all()
    # the decoder takes the shortlist path only beyond L labels (and beyond enumeration)
    assert not InstanceF1Decoder(shortlist=9, enumerate_max_labels=0).uses_shortlist(dist)
    assert InstanceF1Decoder(shortlist=8, enumerate_max_labels=0).uses_shortlist(dist)


@DETERMINISTIC
@given(seed=st.integers(0, 10**6), n_labels=st.integers(11, 40), scale=st.floats(0.5, 4.0), shift=st.floats(-5.0, 1.0))
def test_independent_shortlist_equals_full_gfm_when_the_optimal_size_is_below_l(seed, n_labels, scale, shift):
    g = torch.Generator().manual_seed(seed)
    dist = IndependentBernoulli(torch.randn(6, n_labels, generator=g, dtype=torch.float64) * scale + shift)
    count_marginals, prob_empty = dist.count_marginals(), dist.size_distribution()[:, 0]
    full = gfm(count_marginals, prob_empty)
    decoder = InstanceF1Decoder(shortlist=10)
    chosen, info = decoder.decode_with_info(dist)
    assert decoder.plan(dist)[0].startswith("GFM on a shortlist") and info is not None
    best, got = _expected_f1(count_marginals, prob_empty, full), _expected_f1(count_marginals, prob_empty, chosen)
    below = full.sum(-1) < 10
    torch.testing.assert_close(got[below], best[below], rtol=0, atol=1e-9)
    # the bound holds everywhere; rows flagged exact are optimal
    assert (best - got <= info.loss_bound.double() + 1e-9).all()
    assert ((best - got)[info.exact].abs() < 1e-9).all()
    # the top-k rule (quadrature, exact for M <= 256) agrees on the value where the size is below L
    values, _ = top_k_sets.expected_utility_of_top_k(dist.marginals(), "instance-f1")
    torch.testing.assert_close(got[below], values.max(1).values[below], rtol=0, atol=1e-9)


@pytest.mark.parametrize("index", range(4))
def test_reported_outside_mass_size_tail_and_loss_bound(index):
    dist = _distributions(32, 14, seed=7)[index]
    marginals = dist.marginals()
    chosen, info = shortlist_gfm(dist, shortlist_size=4, max_size=6)
    assert torch.equal(info.shortlist, marginals.argsort(dim=-1, descending=True, stable=True)[:, :4])
    outside = marginals.sum(-1) - marginals.gather(1, info.shortlist).sum(-1)
    torch.testing.assert_close(info.outside_mass.double(), outside.double(), rtol=0, atol=1e-12)
    torch.testing.assert_close(info.size_tail.double(), dist.size_distribution()[:, 7:].sum(-1).double(), rtol=0, atol=1e-12)
    assert (chosen.sum(-1) <= 4).all() and chosen.gather(1, info.shortlist).sum(-1).equal(chosen.sum(-1))
    # the loss bound against the full GFM's expected F1 (computed from the full count marginals)
    count_marginals = dist.count_marginals()
    prob_empty = torch.full((32,), -torch.inf, dtype=torch.float64) if dist.excludes_empty else dist.size_distribution()[:, 0]
    loss = _expected_f1(count_marginals, prob_empty, gfm(count_marginals, prob_empty)) - _expected_f1(count_marginals, prob_empty, chosen)
    assert (loss <= info.loss_bound.double() + 1e-9).all()
    assert (loss[info.exact].abs() < 1e-9).all()


def _chain_distributions(b, m, seed):
    """Chains with exact count marginals (M <= 12: enumeration): dense, sparse, a sparse chain
    ensemble, and a sparse chain given y != 0."""
    from comorbid.distributions import ChainEnsemble

    g = torch.Generator().manual_seed(seed)
    parents = torch.full((m, 2), m)
    for t in range(1, m):
        parents[t, : min(t, 2)] = torch.randperm(t, generator=g)[:2]
    unary = torch.randn(b, m, generator=g, dtype=torch.float64) * 1.5 - 1.0
    dense = ChainBernoulli(unary, torch.randn(m, m, generator=g, dtype=torch.float64) * 2)
    sparse = ChainBernoulli(unary, torch.randn(m, 2, generator=g, dtype=torch.float64) * 2, parents=parents)
    orders = torch.stack([torch.arange(m), torch.randperm(m, generator=g)])
    ensemble = ChainEnsemble(torch.randn(b, 2, m, generator=g, dtype=torch.float64) - 1.0,
                             torch.randn(2, m, 2, generator=g, dtype=torch.float64) * 2, orders,
                             parents=torch.stack([parents, parents]))
    return [dense, sparse, ensemble, NonEmpty(sparse)]


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize("length,max_size", [(3, 9), (5, 4), (9, 9)])
def test_chain_shortlist_against_brute_force_over_every_label_set(index, length, max_size):
    """Conformance by brute force (M = 9, all 512 sets as candidates and as truths, exact
    probabilities from log_prob): the reported outside mass is the marginal mass off the
    shortlist, the expected-F1 loss of the shortlisted set never exceeds the reported bound,
    rows flagged exact are optimal, and a shortlist of every label with every size kept is
    exact on every row."""
    from comorbid.decoders.f_measure import ShortlistInfo
    from comorbid.metrics.utility import instance_f1_utility
    from comorbid.testing.distributions import enumerate_probs

    dist = _chain_distributions(12, 9, seed=5)[index]
    sets, probs = enumerate_probs(dist)  # [K, M], [B, K]
    table = instance_f1_utility(sets[:, None, :], sets[None, :, :])  # [candidate, truth]
    expected = probs.double() @ table.T.double()  # [B, candidate]
    if dist.excludes_empty:
        expected[:, 0] = -torch.inf  # row 0 of all_label_sets: the empty set
    best = expected.max(1).values
    chosen, info = shortlist_gfm(dist, shortlist_size=length, max_size=max_size)
    assert isinstance(info, ShortlistInfo)
    index_of = (chosen.double() * 2 ** torch.arange(9, dtype=torch.float64)).sum(-1).long()
    got = expected.gather(1, index_of[:, None])[:, 0]
    marginals = probs.double() @ sets.double()
    outside = marginals.sum(-1) - marginals.gather(1, info.shortlist).sum(-1)
    torch.testing.assert_close(info.outside_mass.double(), outside, rtol=0, atol=1e-10)
    assert (chosen.sum(-1) <= length).all() and chosen.gather(1, info.shortlist).sum(-1).equal(chosen.sum(-1))
    assert (best - got <= info.loss_bound.double() + 1e-9).all()
    assert ((best - got)[info.exact].abs() < 1e-9).all()
    if length == 9 and max_size == 9:
        assert info.exact.all() and ((best - got).abs() < 1e-9).all()


def test_monte_carlo_shortlist_counts_match_enumeration_on_a_chain():
    """A chain's shortlist counts from samples (|y| counting every sampled label) against the
    exact enumeration; 8000 draws, a fixed seed, tolerance 5 standard errors (0.028)."""
    g = torch.Generator().manual_seed(0)
    chain = ChainBernoulli(torch.randn(4, 10, generator=g, dtype=torch.float64) - 0.5,
                           torch.randn(10, 10, generator=g, dtype=torch.float64))
    chain.n_mc_samples = 8000
    shortlist = chain.marginals().argsort(-1, descending=True)[:, :3]
    exact = JointLabelDistribution.shortlist_count_marginals(chain, shortlist, 10)
    estimate = chain._monte_carlo_shortlist_counts(shortlist, 6)
    torch.testing.assert_close(estimate.counts.double(), exact.counts[..., :7].double(), rtol=0, atol=0.028)
    torch.testing.assert_close(estimate.sizes.double(), exact.sizes[:, :7].double(), rtol=0, atol=0.028)
    torch.testing.assert_close(estimate.size_tail.double(), exact.sizes[:, 7:].sum(-1).double(), rtol=0, atol=0.028)


def test_instance_f1_takes_a_shortlist_argument():
    assert get_decoder("instance-f1=64").shortlist_size == 64
    assert get_decoder("instance-f1=64").spec == "instance-f1=64"
    assert get_decoder("instance-f1").spec == "instance-f1"
    with pytest.raises(ValueError, match="instance-f1=L"):
        get_decoder("instance-f1=many")


def _every_decoder_at_ten_thousand_labels():
    torch.set_num_threads(1)
    b, m = 8, 10_000
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(b, m, generator=g) * 2 - 8  # about 10 labels a row, ICD-like
    seconds = {}
    for dist in (IndependentBernoulli(logits), NonEmpty(IndependentBernoulli(logits))):
        for name in DECODERS:
            if name == "mbr":  # the registry's default cost (ICD tree) needs ICD codes; fewer samples for time
                decoder = MBRDecoder("jaccard", n_samples=200)
            else:
                decoder = get_decoder({"top-k": "top-k=5"}.get(name, name))
            if decoder.needs_fitting:
                decoder.fit(dist.marginals().numpy(), (dist.marginals() > 0.3).numpy().astype(np.int8))
            start = time.perf_counter()
            chosen, info = decoder.decode_with_info(dist)
            seconds[f"{type(dist).__name__} {name}"] = time.perf_counter() - start
            assert chosen.shape == (b, m)
            assert not dist.excludes_empty or (chosen.sum(-1) > 0).all()
            if info is not None:
                assert info.outside_mass.shape == (b,) and (info.outside_mass >= 0).all()
    return seconds


def test_every_decoder_runs_at_ten_thousand_labels_without_m_by_m_tables():
    """B = 8, M = 10,000 under a 1.5 GiB address-space limit: a [B, M, M] float table (3.2 GB)
    or the old [B, M, M+1] count marginals cannot be allocated."""
    seconds = run_isolated(_every_decoder_at_ten_thousand_labels, seconds=60, memory_gib=1.5)
    assert set(seconds) == {f"{kind} {name}" for kind in ("IndependentBernoulli", "NonEmpty") for name in DECODERS}
