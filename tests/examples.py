"""The one list of every distribution and decoder the conformance suites run over.

Adding a model or decoder = one line here (and it must pass ``test_conformance.py``).
"""

from __future__ import annotations

import torch

from comorbid.decoders import HammingDecoder, InstanceF1Decoder, SubsetDecoder
from comorbid.distributions import IndependentBernoulli, all_label_sets
from comorbid.distributions.chain import ChainBernoulli
from comorbid.distributions.nonempty import NonEmpty
from comorbid.distributions.chain_ensemble import ChainEnsemble
from comorbid.distributions.ising import IsingLabels
from comorbid.distributions.mixture import BernoulliMixture
from comorbid.distributions.powerset import LabelPowerset
from comorbid.testing.distributions import DistributionExample


def _normal(generator, *shape, scale=1.0):
    return torch.randn(*shape, generator=generator, dtype=torch.float64) * scale


def _chain_monte_carlo(unary, interactions, beam_size=2):
    """A chain forced onto its Monte Carlo and small-beam code paths."""
    dist = ChainBernoulli(unary, interactions, beam_size=beam_size, n_mc_samples=20000)
    dist.enumerate_max_labels = 0
    return dist


def _mixture_searched_mode(mixing, components):
    """A mixture forced onto its approximate mode search (candidates + hill climbing)."""
    dist = BernoulliMixture(mixing, components)
    dist.enumerate_max_labels = 0
    return dist


def _powerset_sets(n_labels):
    """The sets a powerset example 'saw in training': all but those with index 1 mod 3 (so some
    sets are unseen), always including the empty and the full set."""
    sets = all_label_sets(n_labels, dtype=torch.float64)
    index = torch.arange(len(sets))
    return sets[(index % 3 != 1) | (index == len(sets) - 1)]


def _powerset(logits):
    n_labels = logits.shape[1].bit_length() - 1
    sets = _powerset_sets(n_labels)
    keep = (sets @ (2 ** torch.arange(n_labels, dtype=torch.float64))).long()
    return LabelPowerset(logits[:, keep], sets)


def _orders(r, m):
    generator = torch.Generator().manual_seed(r * 100 + m)
    randoms = [torch.randperm(m, generator=generator) for _ in range(r - 2)]
    return torch.stack([torch.arange(m), torch.arange(m - 1, -1, -1)] + randoms)


def _chain_ensemble(unary, interactions):
    return ChainEnsemble(unary, interactions, _orders(unary.shape[1], unary.shape[2]))


def _chain_ensemble_monte_carlo(unary, interactions):
    """A chain ensemble on its Monte Carlo marginals and searched mode."""
    dist = ChainEnsemble(unary, interactions, _orders(unary.shape[1], unary.shape[2]), beam_size=2, n_mc_samples=20000)
    dist.enumerate_max_labels = 0
    for chain in dist.chains:
        chain.enumerate_max_labels = 0
    return dist


DISTRIBUTIONS = [
    DistributionExample(
        "independent",
        lambda b, m, s, g: (_normal(g, b, m, scale=s),),
        IndependentBernoulli,
    ),
    DistributionExample(
        "chain",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, m, m, scale=2 * s)),
        ChainBernoulli,
    ),
    DistributionExample(
        "chain-per-row-weights-reversed-order",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, b, m, m, scale=2 * s)),
        lambda u, a: ChainBernoulli(u, a, order=torch.arange(u.shape[1] - 1, -1, -1)),
    ),
    DistributionExample(
        "chain-monte-carlo",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, m, m, scale=2 * s)),
        _chain_monte_carlo,
        mc_tolerance=0.03,
    ),
    DistributionExample(
        "chain-ensemble",
        lambda b, m, s, g: (_normal(g, b, 3, m, scale=s), _normal(g, 3, m, m, scale=2 * s)),
        _chain_ensemble,
    ),
    DistributionExample(
        "chain-ensemble-per-row-monte-carlo",
        lambda b, m, s, g: (_normal(g, b, 3, m, scale=s), _normal(g, b, 3, m, m, scale=2 * s)),
        _chain_ensemble_monte_carlo,
        mc_tolerance=0.03,
    ),
    DistributionExample(
        "mixture",
        lambda b, m, s, g: (_normal(g, b, 3, scale=s), _normal(g, b, 3, m, scale=2 * s)),
        BernoulliMixture,
    ),
    DistributionExample(
        "mixture-searched-mode",
        lambda b, m, s, g: (_normal(g, b, 4, scale=s), _normal(g, b, 4, m, scale=2 * s)),
        _mixture_searched_mode,
    ),
    DistributionExample(
        "powerset-with-unseen-sets",
        lambda b, m, s, g: (_normal(g, b, 2**m, scale=2 * s),),
        _powerset,
    ),
    DistributionExample(
        "ising",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, m, m, scale=s)),
        IsingLabels,
    ),
    DistributionExample(
        "ising-per-row-couplings",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, b, m, m, scale=s)),
        IsingLabels,
    ),
    DistributionExample(
        "ising-gibbs",
        # weaker couplings than fields: a Gibbs sampler mixes in a few sweeps
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, m, m, scale=min(s, 1.0))),
        lambda u, c: IsingLabels(u, c, inference="gibbs", n_mc_samples=4000, gibbs_sweeps=24),
        mc_tolerance=0.03,
    ),
    DistributionExample(
        "nonempty-independent",
        lambda b, m, s, g: (_normal(g, b, m, scale=s) - s,),  # shifted down: p(0) is large
        lambda logits: NonEmpty(IndependentBernoulli(logits)),
    ),
    DistributionExample(
        "nonempty-chain",
        lambda b, m, s, g: (_normal(g, b, m, scale=s) - s, _normal(g, m, m, scale=2 * s)),
        lambda u, a: NonEmpty(ChainBernoulli(u, a)),
    ),
    DistributionExample(
        "nonempty-chain-monte-carlo",
        lambda b, m, s, g: (_normal(g, b, m, scale=s) - s, _normal(g, m, m, scale=2 * s)),
        lambda u, a: NonEmpty(_chain_monte_carlo(u, a, beam_size=4)),
        mc_tolerance=0.03,
    ),
    DistributionExample(  # the generic paths: rejection sampling, enumerated non-empty mode
        "nonempty-mixture",
        lambda b, m, s, g: (_normal(g, b, 3, scale=s), _normal(g, b, 3, m, scale=2 * s) - s),
        lambda gate, logits: NonEmpty(BernoulliMixture(gate, logits)),
    ),
    DistributionExample(
        "nonempty-ising",
        lambda b, m, s, g: (_normal(g, b, m, scale=s) - s, _normal(g, m, m, scale=s)),
        lambda u, c: NonEmpty(IsingLabels(u, c)),
    ),
]

#: (decoder, metric utility name, exact?)
DECODERS = [
    (HammingDecoder(), "hamming"),
    (SubsetDecoder(), "subset"),
    (InstanceF1Decoder(), "instance-f1"),
]
