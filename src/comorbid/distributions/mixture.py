"""Conditional Bernoulli mixture (Li, Wang, Pavlu & Aslam, ICML 2016).

    p(y | x) = sum_k pi_k(x) prod_j Bernoulli(y_j; sigmoid(l_kj(x)))

K components, each an independent Bernoulli over the labels; the gating ``pi(x)`` mixes them.
Within a component the labels are independent, but the mixture is not: a component is a
"kind of case" (a typical label set with some noise), which captures co-occurrence and mutual
exclusion that no single product of Bernoullis can.

What is exact:

- ``log_prob`` (a log-sum-exp over components) and ``sample`` (component, then labels) always;
- ``marginals`` = sum_k pi_k sigmoid(l_k) always;
- ``count_marginals`` always: the mixture of the components' exact Poisson-binomial count
  marginals (one O(M^2) recursion per component);
- ``mode`` by enumerating all 2^M sets up to ``enumerate_max_labels`` (16) labels. Beyond, the
  mode of a mixture of products is NP-hard in general, and ``mode()`` returns the best of the
  candidates {each component's mode, the thresholded marginals}, improved by hill climbing over
  single-label flips: a local optimum, flagged approximate (it is never worse than any
  component's mode).

It is a ``MixtureSameFamily`` of ``Independent(Bernoulli)``, which gives log_prob and sampling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Categorical, Independent, MixtureSameFamily, constraints

from comorbid.distributions import poisson_binomial
from comorbid.distributions.base import METHODS, JointLabelDistribution, ShortlistCounts, first_on_log_probs
from comorbid.distributions.noise import Noise, categorical


class BernoulliMixture(JointLabelDistribution):
    """A batch of conditional Bernoulli mixtures.

    Args:
        mixing_logits: ``[B, K]`` unnormalised log mixing weights (gating).
        component_logits: ``[B, K, M]`` per-component label logits.
    """

    #: Up to this many labels ``mode()`` enumerates all 2^M sets (exact).
    enumerate_max_labels = 16

    arg_constraints = {"mixing_logits": constraints.real, "component_logits": constraints.real}
    arg_shapes = {"component_logits": "[B, K, M]", "mixing_logits": "[B, K]"}

    def __init__(self, mixing_logits: torch.Tensor, component_logits: torch.Tensor, validate_args: bool | None = None):
        size = self._check_shapes(mixing_logits=mixing_logits, component_logits=component_logits)
        self.mixing_logits = mixing_logits
        self.component_logits = component_logits
        self._mixture = MixtureSameFamily(
            Categorical(logits=mixing_logits, validate_args=False),
            Independent(Bernoulli(logits=component_logits, validate_args=False), 1, validate_args=False),
            validate_args=False,
        )
        super().__init__(size["B"], size["M"], validate_args)

    @property
    def n_components(self) -> int:
        return self.component_logits.shape[1]

    @property
    def mixing_probs(self) -> torch.Tensor:
        """pi(x), ``[B, K]``."""
        return torch.softmax(self.mixing_logits, -1)

    def tempered(self, temperature: float) -> "BernoulliMixture":
        """Mixing and component logits divided by ``temperature``."""
        tempered = BernoulliMixture(self.mixing_logits / temperature, self.component_logits / temperature,
                                    self._validate_args)
        tempered.with_seed(self.seed)
        tempered.enumerate_max_labels = self.enumerate_max_labels
        return tempered

    @property
    def exact(self) -> frozenset[str]:
        if self.n_labels <= self.enumerate_max_labels:
            return METHODS
        return METHODS - {"mode"}

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        value = self._as_label_sets(value).to(self.component_logits.dtype)
        return self._mixture.log_prob(value)

    def log_prob_nonempty(self) -> torch.Tensor:
        """log sum_k pi_k P_k(y != 0), each component's term without cancellation."""
        from comorbid.distributions.base import first_on_log_probs

        per_component = torch.logsumexp(first_on_log_probs(self.component_logits), -1)  # [B, K]
        return torch.logsumexp(torch.log_softmax(self.mixing_logits, -1) + per_component, -1)

    def sample_with(self, noise: Noise) -> torch.Tensor:
        """A component by inverse CDF, then its labels."""
        with torch.no_grad():
            component = categorical(self.mixing_probs, noise.uniform("component", 1))  # [n, B]
            rows = torch.arange(self.batch_size, device=component.device)
            logits = self.component_logits[rows, component]  # [n, B, M]
            return (noise.uniform("labels", self.n_labels) < torch.sigmoid(logits)).to(logits.dtype)

    def sample_nonempty_with(self, noise: Noise) -> torch.Tensor:
        """Exact samples given y != 0: a component from its posterior given y != 0
        (pi_k P_k(y != 0), normalised), then that component's first label on, then its later
        labels as usual. Rejection would redraw everything while any draw is empty, about
        1 / P(y != 0) times for the row least likely to have a label."""
        with torch.no_grad():
            first_on = first_on_log_probs(self.component_logits)  # [B, K, M]
            posterior = torch.log_softmax(self.mixing_logits, -1) + torch.logsumexp(first_on, -1)
            component = categorical(torch.softmax(posterior, -1), noise.uniform("component", 1))  # [n, B]
            rows = torch.arange(self.batch_size, device=component.device)
            logits = self.component_logits[rows, component]  # [n, B, M]
            first_probs = torch.softmax(first_on[rows, component], -1)  # [n, B, M]
            # inverse CDF per (sample, row): the first label on, given the component
            cdf = first_probs.double().cumsum(-1)
            target = noise.uniform("first", 1) * cdf[..., -1:]
            first = (cdf <= target).sum(-1, keepdim=True).clamp_max(self.n_labels - 1)
            later = (noise.uniform("labels", self.n_labels) < torch.sigmoid(logits)).to(logits.dtype)
            position = torch.arange(self.n_labels, device=logits.device)
            return torch.where(position < first, 0.0, torch.where(position == first, 1.0, later)).to(logits.dtype)

    def marginals(self) -> torch.Tensor:
        return torch.einsum("bk,bkm->bm", self.mixing_probs, torch.sigmoid(self.component_logits))

    def count_marginals(self) -> torch.Tensor:
        per_component = poisson_binomial.count_marginals(torch.sigmoid(self.component_logits.detach()))
        return torch.einsum("bk,bkjs->bjs", self.mixing_probs.detach(), per_component)

    def shortlist_count_marginals(self, shortlist: torch.Tensor, max_size: int) -> ShortlistCounts:
        """Exact: the mixture of each component's shortlist counts (one component at a time,
        so memory stays ``O(B (M + L S))``)."""
        total = None
        for k in range(self.n_components):
            part = poisson_binomial.shortlist_count_marginals(
                torch.sigmoid(self.component_logits[:, k].detach()), shortlist, max_size)
            weight = self.mixing_probs.detach()[:, k]
            part = [part[0] * weight[:, None, None], part[1] * weight[:, None], part[2] * weight]
            total = part if total is None else [t + p for t, p in zip(total, part)]
        return ShortlistCounts(*total)

    def size_distribution(self) -> torch.Tensor:
        per_component = poisson_binomial.size_distribution(torch.sigmoid(self.component_logits.detach()))
        return torch.einsum("bk,bks->bs", self.mixing_probs.detach(), per_component)

    def _enumeration_log_probs(self, sets: torch.Tensor) -> torch.Tensor:
        # log p_k(s) = s . l_k - sum_j softplus(l_kj): one matrix product for all rows/components.
        logits = self.component_logits
        b, k, m = logits.shape
        per_component = (sets.to(logits.dtype) @ logits.reshape(b * k, m).T).reshape(-1, b, k)  # [C, B, K]
        per_component = per_component - F.softplus(logits).sum(-1)
        log_mixing = torch.log_softmax(self.mixing_logits, -1)
        return torch.logsumexp(per_component + log_mixing, -1).T  # [B, C]

    def mode(self, beam_size: int | None = None) -> torch.Tensor:
        if self.n_labels <= self.enumerate_max_labels:
            return self._enumerated_mode()
        dtype = self.component_logits.dtype
        with torch.no_grad():
            component_modes = (self.component_logits > 0).to(dtype)  # [B, K, M]
            thresholded = (self.marginals() > 0.5).to(dtype)[:, None]  # [B, 1, M]
        return self._climb(torch.cat([component_modes, thresholded], dim=1)).to(dtype)

    def _climb(self, candidates: torch.Tensor, max_rounds: int | None = None) -> torch.Tensor:
        """The best of ``candidates [B, C, M]``, then steepest-ascent hill climbing over
        single-label flips (as :meth:`JointLabelDistribution._search_mode`), in O(B K M) memory
        and time per round instead of scoring the ``[M, B, M]`` flipped sets.

        Flipping label j changes component k's log-probability by ``(1 - 2 y_j) l_kj`` (as
        ``log sigmoid(l) - log sigmoid(-l) = l``), so every flip's mixture log-probability is
        one log-sum-exp over the components of ``w_k + (1 - 2 y_j) l_kj``, with ``w_k = log pi_k
        + log p_k(y)`` of the current set. In float64: the gains are differences of sums over
        thousands of labels.
        """
        with torch.no_grad():
            logits = self.component_logits.detach().double()  # [B, K, M]
            offset = torch.log_softmax(self.mixing_logits.detach().double(), -1) - F.softplus(logits).sum(-1)

            def component_scores(sets: torch.Tensor) -> torch.Tensor:  # [B, M] -> [B, K]
                return offset + torch.einsum("bm,bkm->bk", sets, logits)

            b, c, m = candidates.shape
            values = torch.stack([torch.logsumexp(component_scores(candidates[:, i].double()), -1)
                                  for i in range(c)], 1)  # [B, C]
            rows = torch.arange(b, device=candidates.device)
            current = candidates[rows, values.argmax(1)].double()
            for _ in range(max_rounds if max_rounds is not None else 2 * m):
                weights = component_scores(current)  # [B, K]
                flipped = weights[:, :, None] + (1 - 2 * current)[:, None, :] * logits  # [B, K, M]
                gains = torch.logsumexp(flipped, 1) - torch.logsumexp(weights, 1)[:, None]  # [B, M]
                top, which = gains.max(1)
                better = top > 1e-12 * torch.logsumexp(weights, 1).abs().clamp_min(1.0)
                if not better.any():
                    break
                moved = rows[better]
                current[moved, which[moved]] = 1 - current[moved, which[moved]]
        return current
