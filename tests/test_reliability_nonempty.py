"""Every decoder of a distribution conditioned on y != 0 returns a non-empty set, the best
non-empty one for its metric (issue 11). The conformance suite (tests/test_conformance.py)
checks every per-row decoder on the NonEmpty examples against brute force over the non-empty
sets; here the cases it might not reach: every row below 1/2, many labels (Monte Carlo)."""

import numpy as np
import pytest
import torch

from comorbid.decoders import DECODERS, get_decoder
from comorbid.distributions import ChainBernoulli, IndependentBernoulli
from comorbid.distributions.ensemble import UniformMixture
from comorbid.distributions.nonempty import NonEmpty
from comorbid.metrics.utility import utility
from comorbid.testing.decoders import DecoderExample, check_maximises_expected_utility

#: Shift of the logits: most marginals well below 1/2, so the unconstrained rules say "empty".
SHIFT = -3.0


def _nonempty_chain(b, m, seed):
    generator = torch.Generator().manual_seed(seed)
    unary = torch.randn(b, m, generator=generator, dtype=torch.float64) + SHIFT
    return NonEmpty(ChainBernoulli(unary, torch.randn(m, m, generator=generator, dtype=torch.float64)))


def _nonempty_independent(b, m, seed):
    generator = torch.Generator().manual_seed(seed)
    return NonEmpty(IndependentBernoulli(torch.randn(b, m, generator=generator, dtype=torch.float64) + SHIFT))


def _nonempty_bagged(b, m, seed):
    return UniformMixture([_nonempty_chain(b, m, seed), _nonempty_independent(b, m, seed + 1)])


def _decoder(name, m):
    if name in ("macro-f1", "micro-f1"):
        decoder = get_decoder(name)
        return decoder.fit(np.zeros((0, m)), np.zeros((0, m), dtype=np.int8))  # thresholds 1/2
    return get_decoder({"top-k": "top-k=2", "mbr": "mbr=jaccard"}.get(name, name))


@pytest.mark.parametrize("name", sorted(DECODERS))
@pytest.mark.parametrize("build", [_nonempty_chain, _nonempty_independent, _nonempty_bagged], ids=lambda f: f.__name__)
@pytest.mark.parametrize("n_labels", [1, 5, 14])
def test_no_empty_row(name, build, n_labels):
    dist = build(8, n_labels, seed=n_labels)
    assert dist.excludes_empty
    chosen = _decoder(name, n_labels).decode(dist)
    assert (chosen.sum(-1) > 0).all(), f"{name}: empty rows {(chosen.sum(-1) == 0).nonzero().flatten().tolist()}"


@pytest.mark.parametrize("metric", ["hamming", "subset", "instance-f1", "jaccard"])
@pytest.mark.parametrize("build", [_nonempty_chain, _nonempty_independent, _nonempty_bagged], ids=lambda f: f.__name__)
@pytest.mark.parametrize("n_labels", [1, 3, 6])
def test_best_nonempty_set_by_brute_force(metric, build, n_labels):
    """Brute force over all 2^M - 1 non-empty sets (the suite's check on a distribution that
    excludes the empty set)."""
    dist = build(12, n_labels, seed=5 + n_labels)
    table = lambda sets: utility(metric, sets[:, None, :], sets[None, :, :])  # noqa: E731
    check_maximises_expected_utility(DecoderExample(metric, lambda m: get_decoder(metric), table), dist)


def test_hamming_completion_is_the_most_probable_label_when_nothing_passes_one_half():
    dist = _nonempty_independent(16, 6, seed=3)
    marginals = dist.marginals()
    below = (marginals <= 0.5).all(-1)
    assert below.sum() >= 8  # the case this test is about
    chosen = get_decoder("hamming").decode(dist)
    assert torch.equal(chosen[below].argmax(-1), marginals[below].argmax(-1))
    assert (chosen[below].sum(-1) == 1).all()
    assert torch.equal(chosen[~below], (marginals[~below] > 0.5).to(chosen.dtype))


def test_instance_f1_completion_is_gfm_over_sizes_from_one():
    """The completion used where GFM would say "empty" is the best set of size >= 1 (the
    instance-F1 decoder's completion, called directly on a distribution WITH an empty set)."""
    generator = torch.Generator().manual_seed(0)
    dist = IndependentBernoulli(torch.randn(10, 5, generator=generator, dtype=torch.float64) - 3.0)
    decoder = get_decoder("instance-f1")
    best = decoder.best_nonempty(dist)
    table = utility("instance-f1", *_pairs(5))
    sets = _pairs(5)[1][0]
    probs = dist.log_prob(sets[:, None, :].expand(-1, 10, -1)).T.exp()
    expected = probs @ table.T
    expected[:, 0] = -torch.inf
    index = (best.double() @ (2 ** torch.arange(5, dtype=torch.float64))).long()
    assert torch.allclose(expected.gather(1, index[:, None])[:, 0], expected.max(-1).values, atol=1e-12)


def _pairs(m):
    from comorbid.distributions.base import all_label_sets

    sets = all_label_sets(m, dtype=torch.float64)
    return sets[:, None, :], sets[None, :, :]
