"""The one list of every distribution and decoder the conformance suites run over.

Adding a model or decoder = one line here (and it must pass ``test_conformance.py``).
"""

from __future__ import annotations

import torch

from comorbid.decoders import HammingDecoder, InstanceF1Decoder, SubsetDecoder
from comorbid.distributions import IndependentBernoulli
from comorbid.distributions.chain import ChainBernoulli
from comorbid.distributions.nonempty import NonEmpty
from comorbid.testing.distributions import DistributionExample


def _normal(generator, *shape, scale=1.0):
    return torch.randn(*shape, generator=generator, dtype=torch.float64) * scale


def _chain_monte_carlo(unary, interactions, beam_size=2):
    """A chain forced onto its Monte Carlo and small-beam code paths."""
    dist = ChainBernoulli(unary, interactions, beam_size=beam_size, n_mc_samples=20000)
    dist.enumerate_max_labels = 0
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
]

#: (decoder, metric utility name, exact?)
DECODERS = [
    (HammingDecoder(), "hamming"),
    (SubsetDecoder(), "subset"),
    (InstanceF1Decoder(), "instance-f1"),
]
