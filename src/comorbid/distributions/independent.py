"""Independent labels: the binary cross-entropy baseline as a joint distribution."""

from __future__ import annotations

import torch
from torch.distributions import Bernoulli, Independent, constraints

from comorbid.distributions import poisson_binomial
from comorbid.distributions.base import METHODS, JointLabelDistribution, ShortlistCounts, first_on_log_probs
from comorbid.distributions.noise import Noise, categorical


class IndependentBernoulli(JointLabelDistribution):
    """p(y | x) = prod_j sigmoid(l_j)^y_j (1 - sigmoid(l_j))^(1 - y_j).

    Maximising its log-likelihood is minimising binary cross-entropy summed over labels.
    Everything is exact: marginals are the sigmoids, the mode thresholds them at 0.5, and
    ``count_marginals`` comes from a Poisson-binomial recursion in O(M^2) per row.

    Args:
        logits: ``[B, M]`` per-label logits.
    """

    arg_constraints = {"logits": constraints.real}
    arg_shapes = {"logits": "[B, M]"}

    def __init__(self, logits: torch.Tensor, validate_args: bool | None = None):
        size = self._check_shapes(logits=logits)
        self.logits = logits
        self._base = Independent(Bernoulli(logits=logits, validate_args=False), 1, validate_args=False)
        super().__init__(size["B"], size["M"], validate_args)

    @property
    def exact(self) -> frozenset[str]:
        return METHODS

    def tempered(self, temperature: float) -> "IndependentBernoulli":
        return IndependentBernoulli(self.logits / temperature, self._validate_args).with_seed(self.seed)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        value = self._as_label_sets(value).to(self.logits.dtype)
        return self._base.log_prob(value)

    def sample_with(self, noise: Noise) -> torch.Tensor:
        with torch.no_grad():
            return (noise.uniform("labels", self.n_labels) < torch.sigmoid(self.logits)).to(self.logits.dtype)

    def log_prob_nonempty(self) -> torch.Tensor:
        return torch.logsumexp(first_on_log_probs(self.logits), -1)

    def sample_nonempty_with(self, noise: Noise) -> torch.Tensor:
        """Exact samples given y != 0: the first label that is on, then the later ones as usual."""
        with torch.no_grad():
            first = categorical(torch.softmax(first_on_log_probs(self.logits), -1), noise.uniform("first", 1))
            samples = self.sample_with(noise)
            position = torch.arange(self.n_labels, device=self.logits.device)
            first = first[..., None]
            return torch.where(position < first, 0.0, torch.where(position == first, 1.0, samples)).to(samples.dtype)

    def marginals(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    def log_marginals(self) -> torch.Tensor:
        return torch.nn.functional.logsigmoid(self.logits)

    def mode(self, beam_size: int | None = None) -> torch.Tensor:
        return (self.logits > 0).to(self.logits.dtype)

    @property
    def exact_nonempty_mode(self) -> bool:
        return True

    def nonempty_mode(self, beam_size: int | None = None) -> torch.Tensor:
        """The mode, or where it is empty the single most probable label (exact: adding a label
        of probability below 1/2 only lowers the probability)."""
        mode = self.mode()
        best = torch.nn.functional.one_hot(self.logits.argmax(-1), self.n_labels).to(mode.dtype)
        return torch.where(mode.sum(-1, keepdim=True) == 0, best, mode)

    def count_marginals(self) -> torch.Tensor:
        return poisson_binomial.count_marginals(self.marginals().detach())

    def size_distribution(self) -> torch.Tensor:
        return poisson_binomial.size_distribution(self.marginals().detach())

    def shortlist_count_marginals(self, shortlist: torch.Tensor, max_size: int) -> ShortlistCounts:
        """Exact: the shortlist's Poisson-binomial combined with the outside labels' (see
        :func:`comorbid.distributions.poisson_binomial.shortlist_count_marginals`)."""
        return ShortlistCounts(*poisson_binomial.shortlist_count_marginals(self.marginals().detach(), shortlist, max_size))
