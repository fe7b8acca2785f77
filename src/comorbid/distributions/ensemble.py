"""A uniform mixture of joint label distributions: what an ensemble of models predicts.

p(y | x) = (1 / R) sum_r p_r(y | x). ``log_prob`` is an exact log-mean-exp and ``sample`` is
exact (pick a member, then sample it; given y != 0, pick it by its P_r(y != 0)); ``marginals``, ``count_marginals`` and
``log_prob_nonempty`` are linear in the distribution, so the members' averages, exact where
theirs are. ``mode`` enumerates all 2^M sets up to ``enumerate_max_labels`` labels (exact);
beyond, the best of the members' modes under the mixture, improved by single-label flips
(approximate). Used by the chain ensemble (:mod:`comorbid.distributions.chain_ensemble`) and by
bagged models (:mod:`comorbid.heads.bagging`).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from comorbid.distributions.base import METHODS, JointLabelDistribution


class UniformMixture(JointLabelDistribution):
    """The uniform mixture of ``members`` (each ``[B]`` over the same ``M`` labels)."""

    enumerate_max_labels = 12

    def __init__(self, members: Sequence[JointLabelDistribution], validate_args: bool | None = False):
        if not members:
            raise ValueError("Expected at least one member distribution, got none")
        shapes = {(d.batch_size, d.n_labels) for d in members}
        if len(shapes) != 1:
            raise ValueError(f"Expected members of one batch size and label count, got {sorted(shapes)}")
        self.members = list(members)
        (b, m), = shapes
        super().__init__(b, m, validate_args)

    @property
    def n_members(self) -> int:
        return len(self.members)

    def tempered(self, temperature: float) -> "UniformMixture":
        tempered = UniformMixture([member.tempered(temperature) for member in self.members])
        tempered.enumerate_max_labels = self.enumerate_max_labels
        return tempered

    @property
    def exact(self) -> frozenset[str]:
        exact = {method for method in ("log_prob", "sample", "marginals", "count_marginals")
                 if all(method in member.exact for member in self.members)}
        if self.n_labels <= self.enumerate_max_labels and "log_prob" in exact:
            exact.add("mode")
        return frozenset(exact) & METHODS

    def member_log_probs(self, value: torch.Tensor) -> torch.Tensor:
        """Each member's log p_r(y | x), ``[..., B, M] -> [..., B, R]``."""
        value = self._check_value(value)
        return torch.stack([member.log_prob(value) for member in self.members], -1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.member_log_probs(value), -1) - math.log(self.n_members)

    def log_prob_nonempty(self) -> torch.Tensor:
        per_member = torch.stack([member.log_prob_nonempty() for member in self.members], -1)  # [B, R]
        return torch.logsumexp(per_member, -1) - math.log(self.n_members)

    def sample(self, sample_shape=()) -> torch.Tensor:
        shape = torch.Size(sample_shape)
        n = max(shape.numel(), 1)
        with torch.no_grad():
            # Draw every member, then keep one member's draw per (sample, row), chosen uniformly.
            draws = torch.stack([member.sample((n,)) for member in self.members])  # [R, n, B, M]
            which = torch.randint(self.n_members, (n, self.batch_size), device=draws.device)
            picked = draws.gather(0, which[None, :, :, None].expand(1, -1, -1, self.n_labels))[0]
        return picked.reshape(*shape, *self.batch_shape, *self.event_shape)

    def sample_nonempty(self, sample_shape=()) -> torch.Tensor:
        """Given y != 0: a member from its posterior given y != 0 (proportional to
        P_r(y != 0)), then that member's ``sample_nonempty`` (exact where the members' are)."""
        shape = torch.Size(sample_shape)
        n = max(shape.numel(), 1)
        with torch.no_grad():
            posterior = torch.stack([member.log_prob_nonempty() for member in self.members], -1)  # [B, R]
            which = torch.distributions.Categorical(logits=posterior).sample((n,))  # [n, B]
            draws = torch.stack([member.sample_nonempty((n,)) for member in self.members])  # [R, n, B, M]
            picked = draws.gather(0, which[None, :, :, None].expand(1, -1, -1, self.n_labels))[0]
        return picked.reshape(*shape, *self.batch_shape, *self.event_shape)

    def marginals(self) -> torch.Tensor:
        return torch.stack([member.marginals() for member in self.members]).mean(0)

    def count_marginals(self) -> torch.Tensor:
        return torch.stack([member.count_marginals() for member in self.members]).mean(0)

    def mode(self, beam_size: int | None = None) -> torch.Tensor:
        if self.n_labels <= self.enumerate_max_labels:
            return self._enumerated_mode()
        with torch.no_grad():
            candidates = torch.stack([member.mode(beam_size) for member in self.members], 1)  # [B, R, M]
        return self._search_mode(candidates)
