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

from comorbid.distributions.base import METHODS, JointLabelDistribution, ShortlistCounts
from comorbid.distributions.noise import Noise, SelectedNoise, categorical


class UniformMixture(JointLabelDistribution):
    """The uniform mixture of ``members`` (each ``[B]`` over the same ``M`` labels).

    Seeds: member ``r`` is reseeded with ``seed * 1000003 + r + 1`` (see :meth:`with_seed`), so
    members' Monte Carlo draws are independent of each other; the mixture's own seed is set at
    construction from ``seed`` (default the library's).
    """

    enumerate_max_labels = 12

    def __init__(self, members: Sequence[JointLabelDistribution], validate_args: bool | None = None,
                 seed: int | None = None):
        if not members:
            raise ValueError("Expected at least one member distribution, got none")
        shapes = {(d.batch_size, d.n_labels) for d in members}
        if len(shapes) != 1:
            raise ValueError(f"Expected members of one batch size and label count, got {sorted(shapes)}")
        self.members = list(members)
        (b, m), = shapes
        super().__init__(b, m, validate_args)
        self.with_seed(seed if seed is not None else self.seed)

    def with_seed(self, seed: int) -> "UniformMixture":
        for index, member in enumerate(self.members):
            member.with_seed(int(seed) * 1000003 + index + 1)
        return super().with_seed(seed)

    @property
    def excludes_empty(self) -> bool:
        return all(member.excludes_empty for member in self.members)

    @property
    def n_members(self) -> int:
        return len(self.members)

    def tempered(self, temperature: float) -> "UniformMixture":
        tempered = UniformMixture([member.tempered(temperature) for member in self.members], self._validate_args,
                                  seed=self.seed)
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
        value = self._as_label_sets(value)
        return torch.stack([member.log_prob(value) for member in self.members], -1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.member_log_probs(value), -1) - math.log(self.n_members)

    def log_prob_nonempty(self) -> torch.Tensor:
        per_member = torch.stack([member.log_prob_nonempty() for member in self.members], -1)  # [B, R]
        return torch.logsumexp(per_member, -1) - math.log(self.n_members)

    def sample_with(self, noise: Noise) -> torch.Tensor:
        with torch.no_grad():
            if noise.rows == 1 and all(member.draws_per_sample for member in self.members):
                return self._sample_chosen_members(noise)
            # Draw every member (each from its own sub-stream), then keep one member's draw per
            # (sample, row), chosen uniformly.
            draws = torch.stack([member.sample_with(noise.child(f"member-{r}"))
                                 for r, member in enumerate(self.members)])  # [R, n, B, M]
            uniform = torch.ones(self.batch_size, self.n_members, dtype=torch.float64)
            which = categorical(uniform, noise.uniform("which", 1))  # [n, B]
            return draws.gather(0, which[None, :, :, None].expand(1, -1, -1, self.n_labels))[0]

    def _sample_chosen_members(self, noise: Noise) -> torch.Tensor:
        """:meth:`sample_with` for common noise (one row of uniforms for the batch): the member
        of sample s is then the same in every row, so each member draws only its own samples
        (from the same uniforms: a chain's draw is a function of its sample's noise alone),
        R times less work than drawing every member for every sample; the same draws."""
        uniform = torch.ones(1, self.n_members, dtype=torch.float64)
        which = categorical(uniform, noise.uniform("which", 1))[:, 0]  # [n]
        out = None
        for r, member in enumerate(self.members):
            chosen = (which == r).nonzero()[:, 0]
            if len(chosen):
                draws = member.sample_with(SelectedNoise(noise.child(f"member-{r}"), chosen))
                if out is None:
                    out = draws.new_zeros((noise.n,) + tuple(draws.shape[1:]))
                out[chosen.to(draws.device)] = draws
        return out if out is not None else torch.zeros(0, self.batch_size, self.n_labels)

    def sample_nonempty_with(self, noise: Noise) -> torch.Tensor:
        """Given y != 0: a member from its posterior given y != 0 (proportional to
        P_r(y != 0)), then that member's ``sample_nonempty`` (exact where the members' are)."""
        with torch.no_grad():
            posterior = torch.stack([member.log_prob_nonempty() for member in self.members], -1)  # [B, R]
            which = categorical(torch.softmax(posterior, -1), noise.uniform("which", 1))  # [n, B]
            draws = torch.stack([member.sample_nonempty_with(noise.child(f"member-{r}"))
                                 for r, member in enumerate(self.members)])  # [R, n, B, M]
            return draws.gather(0, which[None, :, :, None].expand(1, -1, -1, self.n_labels))[0]

    def marginals(self) -> torch.Tensor:
        return torch.stack([member.marginals() for member in self.members]).mean(0)

    def count_marginals(self) -> torch.Tensor:
        return torch.stack([member.count_marginals() for member in self.members]).mean(0)

    def shortlist_count_marginals(self, shortlist: torch.Tensor, max_size: int) -> ShortlistCounts:
        parts = [member.shortlist_count_marginals(shortlist, max_size) for member in self.members]
        return ShortlistCounts(*(torch.stack(field).mean(0) for field in zip(*parts)))

    def mode(self, beam_size: int | None = None) -> torch.Tensor:
        if self.n_labels <= self.enumerate_max_labels:
            return self._enumerated_mode()
        with torch.no_grad():
            candidates = torch.stack([member.mode(beam_size) for member in self.members], 1)  # [B, R, M]
        climbed = self._climb_by_flips(candidates)
        return climbed if climbed is not None else self._search_mode(candidates)

    def _climb_by_flips(self, candidates: torch.Tensor, max_rounds: int | None = None) -> torch.Tensor | None:
        """:meth:`_search_mode` (the best candidate, then steepest ascent over single-label
        flips) with each round's M neighbours scored from the members' ``flip_log_probs``
        (``[B, M]`` each, O(B M K) for sparse chains) instead of ``[M, B, M]`` neighbour sets:
        what a mixture of sparse chains needs at thousands of labels. None when a member has
        no ``flip_log_probs`` (see :meth:`JointLabelDistribution.flip_log_probs`)."""
        b, _, m = candidates.shape
        with torch.no_grad():
            values = self.log_prob(candidates.transpose(0, 1))  # [C, B]
            current = candidates[torch.arange(b), values.argmax(0)].clone()
            current_score = values.max(0).values
            for _ in range(max_rounds if max_rounds is not None else 2 * m):
                flips = [member.flip_log_probs(current) for member in self.members]
                if any(flip is None for flip in flips):
                    return None
                flips = torch.stack(flips)  # [R, B, M]
                scores = torch.logsumexp(flips, 0) - math.log(self.n_members)
                top, which = scores.max(1)
                better = top > current_score + 1e-12 * current_score.abs().clamp_min(1.0)
                if not better.any():
                    break
                rows = better.nonzero()[:, 0]
                current[rows, which[rows]] = 1.0 - current[rows, which[rows]]
                current_score = torch.where(better, top, current_score)
        return current
