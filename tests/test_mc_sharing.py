"""What the serve speed-ups of issue 17 must not change: the chain's count marginals and marginals
from one ancestral pass equal those of separate passes, and memoised noise blocks equal freshly
generated ones and cannot be altered through a caller's tensor."""

import torch

from comorbid.distributions.chain import ChainBernoulli
from comorbid.distributions.nonempty import NonEmpty
from comorbid.distributions.noise import Noise, _generate_block


def _chain(seed: int = 0) -> ChainBernoulli:
    generator = torch.Generator().manual_seed(seed)
    b, m = 3, 14  # above enumerate_max_labels: Monte Carlo
    return ChainBernoulli(torch.randn(b, m, generator=generator), torch.randn(m, m, generator=generator),
                          n_mc_samples=100, seed=7)


def test_one_pass_gives_the_two_pass_values_whatever_is_asked_first():
    for wrap in (lambda d: d, NonEmpty):
        counts_first = wrap(_chain())
        counts, marginals = counts_first.count_marginals(), counts_first.marginals()
        separate = wrap(_chain())
        marginals_alone = separate.marginals()  # its own pass: the shared path is not taken
        chain, nonempty = _chain(), wrap is NonEmpty
        # the draws-only pass of the base class
        counts_alone = super(ChainBernoulli, chain)._monte_carlo_count_marginals(nonempty)
        assert torch.equal(marginals, marginals_alone)
        assert torch.equal(counts, counts_alone)


def test_memoised_noise_equals_fresh_noise_and_is_copied_out():
    noise = Noise(3, "mc", 5, 40)
    first = noise.uniform("labels", 45)
    fresh = torch.cat([_generate_block(3, "mc", "labels", block, 1, 45) for block in range(3)])[5:45]
    assert torch.equal(first, fresh)
    first.add_(1.0)  # a caller writing into its noise
    assert torch.equal(Noise(3, "mc", 5, 40).uniform("labels", 45), fresh)
