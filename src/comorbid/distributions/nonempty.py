"""Label sets with at least one label: any joint distribution conditioned on y != 0.

In clinical coding every document that reaches a coder gets at least one code (all 978 CMC 2007
reports do). A model that leaves mass on the empty set wastes it on an answer that never
happens, and a decoder may then return it: under independent labels with every marginal below
1/2 the subset-accuracy decision is the empty set, which is always wrong here. Conditioning on
y != 0 is one global dependence between all labels (none of them alone says "at least one"):

    p'(y) = p(y) 1[y != 0] / (1 - p(0)).

Everything is inherited from the base distribution ``p``: ``log_prob`` subtracts
``log(1 - p(0))``; marginals and count marginals are the base's divided by ``1 - p(0)`` (the
empty set adds nothing to them); samples come from the base's ``sample_nonempty``
(exact for independent labels and chains, rejection sampling otherwise); the mode is the
base's most probable non-empty set (:meth:`JointLabelDistribution.nonempty_mode`).
"""

from __future__ import annotations

from functools import cached_property

import torch

from comorbid.distributions.base import JointLabelDistribution, ShortlistCounts
from comorbid.distributions.noise import Noise


class NonEmpty(JointLabelDistribution):
    """``base`` conditioned on at least one label being on.

    Args:
        base: any joint label distribution ``[B]`` over ``M >= 1`` labels.
        validate_args: check values given to ``log_prob``; default: as ``base`` does.
    """

    def __init__(self, base: JointLabelDistribution, validate_args: bool | None = None):
        if base.n_labels < 1:
            raise ValueError("Expected at least one label for a non-empty distribution, got 0")
        self.base = base
        self.enumerate_max_labels = base.enumerate_max_labels
        self.n_mc_samples = base.n_mc_samples
        super().__init__(base.batch_size, base.n_labels, base._validate_args if validate_args is None else validate_args)
        self.seed = base.seed

    @cached_property
    def log_base_nonempty(self) -> torch.Tensor:
        """log P_base(y != 0) = log(1 - p(0)), ``[B]`` (computed when first needed: the
        pseudo-likelihood does not need it, and beyond the Ising model's exact regime it costs a
        mean-field fit)."""
        return self.base.log_prob_nonempty()

    @property
    def excludes_empty(self) -> bool:
        return True

    def with_seed(self, seed: int) -> "NonEmpty":
        self.base.with_seed(seed)
        return super().with_seed(seed)

    @property
    def exact(self) -> frozenset[str]:
        exact = set(self.base.exact) & {"log_prob", "marginals", "count_marginals", "sample"}
        if self.base.exact_nonempty_mode:
            exact.add("mode")
        return frozenset(exact)

    @property
    def exact_nonempty_mode(self) -> bool:
        return "mode" in self.exact

    def tempered(self, temperature: float) -> "NonEmpty":
        return NonEmpty(self.base.tempered(temperature), self._validate_args).with_seed(self.seed)

    def log_prob_nonempty(self) -> torch.Tensor:
        return torch.zeros_like(self.log_base_nonempty)

    def conditional_log_probs(self, value: torch.Tensor) -> torch.Tensor:
        """log p'(y_j | y_-j), ``[..., B, M]``, from the base's: conditioning on y != 0 changes
        only the factor of a label that is alone in ``y`` (y_-j = 0 forces y_j = 1, log 1 = 0);
        every factor of the empty set is -inf. Exact where the base's are (so the Ising
        pseudo-likelihood of the conditioned model is as cheap as the plain one)."""
        value = self._as_label_sets(value)
        terms = self.base.conditional_log_probs(value)
        size = value.sum(-1, keepdim=True)
        terms = torch.where((size == 1) & (value == 1), torch.zeros_like(terms), terms)
        return torch.where(size == 0, torch.full_like(terms, -torch.inf), terms)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        value = self._as_label_sets(value)
        # log P(y != 0) first: the autograd graph (hence the float rounding of the gradient)
        # is then built in the same order as when it was computed at construction
        log_base_nonempty = self.log_base_nonempty
        log_prob = self.base.log_prob(value) - log_base_nonempty
        empty = value.sum(-1) == 0
        return torch.where(empty, torch.full_like(log_prob, -torch.inf), log_prob)

    def sample_with(self, noise: Noise) -> torch.Tensor:
        return self.base.sample_nonempty_with(noise)

    # Where the base computes a quantity exactly, rescale it (in log space, so that a row whose
    # p(y != 0) underflows still gets finite values); otherwise estimate it from this
    # distribution's own samples (``sample_nonempty`` of the base, Rao-Blackwellised for chains): rescaling a Monte Carlo estimate by 1 / (1 - p(0))
    # would magnify its error when p(0) is large.
    def marginals(self) -> torch.Tensor:
        if "marginals" in self.base.exact:
            return (self.base.log_marginals() - self.log_base_nonempty[:, None]).exp().clamp_max(1.0)
        if self.n_labels <= self.enumerate_max_labels:
            return self._enumerated_marginals()
        return self.base._monte_carlo_marginals(nonempty=True)

    def count_marginals(self) -> torch.Tensor:
        if "count_marginals" in self.base.exact:
            return (self.base.count_marginals().log() - self.log_base_nonempty[:, None, None]).exp().clamp_max(1.0)
        if self.n_labels <= self.enumerate_max_labels:
            return self._enumerated_count_marginals()
        return self.base._monte_carlo_count_marginals(nonempty=True)

    def shortlist_count_marginals(self, shortlist: torch.Tensor, max_size: int) -> ShortlistCounts:
        if "count_marginals" in self.base.exact:
            base = self.base.shortlist_count_marginals(shortlist, max_size)
            scale = lambda x, extra: (x.log() - self.log_base_nonempty.reshape(-1, *extra)).exp().clamp_max(1.0)  # noqa: E731
            sizes = scale(base.sizes, (1,))
            sizes[:, 0] = 0.0
            return ShortlistCounts(scale(base.counts, (1, 1)), sizes, scale(base.size_tail, ()))
        if self.n_labels <= self.enumerate_max_labels:
            return super().shortlist_count_marginals(shortlist, max_size)
        return self.base._monte_carlo_shortlist_counts(shortlist, max_size, nonempty=True)

    def mode(self, beam_size: int | None = None) -> torch.Tensor:
        return self.base.nonempty_mode(beam_size)

    def nonempty_mode(self, beam_size: int | None = None) -> torch.Tensor:
        return self.mode(beam_size)
