"""Probabilistic classifier chain (Dembczynski, Cheng & Huellermeier, ICML 2010).

p(y | x) = prod_t p(y_{o_t} | x, y_{o_1}, ..., y_{o_{t-1}}) for a label order o, each factor a
logistic model whose logit is the label's own input-dependent logit plus a learned weight for
every label earlier in the chain:

    logit_{o_t} = u_{o_t}(x) + sum_{s < t} A[o_t, o_s] * y_{o_s}

Training is teacher-forced: with the true labels fed in, the log-likelihood is one matrix
product, as cheap as binary cross-entropy.

At thousands of labels the dense ``[M, M]`` weights cost O(M^2) memory and every sample
O(M^2) time. A *sparse* chain conditions each position on at most ``k`` earlier positions,
its parents (chosen from the training labels' co-occurrence, see
:func:`comorbid.heads.chain.choose_parents`), as the Bayesian chain classifiers of Zaragoza,
Sucar, Morales, Bielza & Larranaga (IJCAI 2011) condition each label on its parents in a
Bayesian network:

    logit_t = u_t(x) + sum_i W[t, i] * y_{parents[t, i]}

Teacher forcing is then a gather, O(B M k); ancestral sampling and beam search gather the
``k`` parents' values per position, O(n B k) per position. Nothing ``[M, M]`` is built.
Sampling runs level by level of the parent graph (all positions whose parents are drawn, at
once), the beam search keeps only the parents still to be read and passes runs of positions
that cannot change the beams in blocks (see ``docs/decoders.md``, "Chains at many labels").
"""

from __future__ import annotations

import functools
import heapq

import torch
import torch.nn.functional as F
from torch.distributions import constraints

from comorbid.distributions.base import (METHODS, JointLabelDistribution, count_marginals_of_draws,
                                         first_on_log_probs, permutation)
from comorbid.distributions.noise import NOISE_BLOCK, Noise, categorical

#: Beam width of ``mode()`` when none is given.
DEFAULT_BEAM_SIZE = 64
#: Values (positions x samples x rows) one vectorised step of a sparse chain's sampling holds
#: per working tensor (see :meth:`ChainBernoulli._ancestral_by_levels`): 16 MiB of float32.
LEVEL_GROUP_VALUES = 2**22
#: Values (positions x beams x rows) of one block of a sparse chain's beam search.
BEAM_BLOCK_VALUES = 2**20


class _EarlierPositions(constraints.Constraint):
    """A sparse chain's ``parents [M, K]``: row t holds earlier positions (< t) or the padding M."""

    event_dim = 2
    description = "earlier chain positions (< t) or the padding M in each row t"

    @staticmethod
    def _valid(parents: torch.Tensor) -> torch.Tensor:
        m = parents.shape[0]
        position = torch.arange(m, device=parents.device)[:, None]
        return ((parents >= 0) & (parents < position)) | (parents == m)

    def check(self, value: torch.Tensor) -> torch.Tensor:
        return self._valid(value).all()

    def explain(self, value: torch.Tensor) -> str:
        t, i = (~self._valid(value)).nonzero()[0].tolist()
        return f"{value[t, i].item()} at t={t}"


class ChainBernoulli(JointLabelDistribution):
    """A batch of probabilistic classifier chains.

    Args:
        unary_logits: ``[B, M]`` input-dependent logits u(x), in label order.
        interactions: dense chain (``parents`` None): ``[M, M]`` (shared) or ``[B, M, M]``
            weights; ``A[j, k]`` is the effect of label k on label j. Only entries where k comes
            before j in ``order`` are used. Sparse chain: ``[M, K]`` or ``[B, M, K]`` parent
            weights in chain order, ``W[t, i]`` the effect of position ``parents[t, i]`` on
            position t.
        order: ``[M]`` permutation of label indices, the chain order (default ``0..M-1``).
        beam_size: beam width for ``mode()`` (default 64: exact for M <= 7).
        n_mc_samples: samples for Monte Carlo marginals / count marginals when M > 12.
        seed: seeds the Monte Carlo draws (see :mod:`comorbid.distributions.noise`).
        parents: ``[M, K]`` long, a sparse chain: row t holds the chain positions (each < t)
            that position t conditions on, padded with ``M`` (no parent; its weight is unused).
            None (default): the dense chain.

    Monte Carlo marginals run in chunks of samples (at most
    :data:`comorbid.distributions.base.MC_CHUNK_BYTES` of working tensors), so memory is
    O(chunk x B x M) rather than O(n_mc_samples x B x M); the result does not depend on the
    chunk size.
    """

    #: Up to this many labels, marginals and count marginals are computed by enumeration (exact).
    enumerate_max_labels = 12
    #: Ancestral sampling: sample s compares its own uniforms only.
    draws_per_sample = True
    arg_constraints = {"unary_logits": constraints.real, "interactions": constraints.real, "order": permutation,
                       "parents": _EarlierPositions()}
    #: ``K`` is ``M`` for a dense chain (``parents`` None).
    arg_shapes = {"unary_logits": "[B, M]", "parents": "[M, K]", "interactions": "[M, K] or [B, M, K]",
                  "order": "[M]"}

    def __init__(
        self,
        unary_logits: torch.Tensor,
        interactions: torch.Tensor,
        order: torch.Tensor | None = None,
        beam_size: int = DEFAULT_BEAM_SIZE,
        n_mc_samples: int = 2000,
        validate_args: bool | None = None,
        seed: int | None = None,
        parents: torch.Tensor | None = None,
    ):
        order = None if order is None else torch.as_tensor(order, dtype=torch.long)
        dense = None if parents is not None else {"K": unary_logits.shape[-1]}
        size = self._check_shapes(dense, unary_logits=unary_logits, parents=parents, interactions=interactions,
                                  order=order)
        b, m = size["B"], size["M"]
        order = torch.arange(m) if order is None else order
        self.unary_logits = unary_logits
        self.interactions = interactions
        self.order = order
        self.parents = parents
        self.beam_size = beam_size
        self.n_mc_samples = n_mc_samples
        super().__init__(b, m, validate_args)  # checks the arguments before they are used
        # Everything below works in chain order: position t holds label order[t].
        self._unary = unary_logits[:, order]
        if parents is None:
            strictly_lower = torch.tril(torch.ones(m, m, dtype=torch.bool, device=unary_logits.device), -1)
            self._weights = interactions[..., order, :][..., :, order] * strictly_lower
        else:
            self._parents, self._weights, self._n_parents = _real_parents_first(parents, interactions)
        if seed is not None:
            self.with_seed(seed)

    @property
    def sparse(self) -> bool:
        """True for a chain with at most K parents per position (``parents`` given)."""
        return self.parents is not None

    @property
    def exact(self) -> frozenset[str]:
        exact = {"log_prob", "sample"}
        if self.n_labels <= self.enumerate_max_labels:
            exact |= {"marginals", "count_marginals"}
        if self.beam_size >= 2 ** max(self.n_labels - 1, 0):
            exact.add("mode")
        return frozenset(exact) & METHODS

    def tempered(self, temperature: float) -> "ChainBernoulli":
        """Every factor's logit (input part and label-on-label weights) divided by ``temperature``."""
        tempered = ChainBernoulli(self.unary_logits / temperature, self.interactions / temperature, self.order,
                                  beam_size=self.beam_size, n_mc_samples=self.n_mc_samples, seed=self.seed,
                                  parents=self.parents, validate_args=self._validate_args)
        tempered.enumerate_max_labels = self.enumerate_max_labels
        return tempered

    # ------------------------------------------------------------------ core
    def chain_logits(self, value_in_chain_order: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``[..., B, M]`` of every position given the earlier labels.

        Sparse chain: a gather of each position's parents from the values padded with a zero
        slot (index M), ``[..., B, M, K]``: O(B M K)."""
        if self.sparse:
            zero = value_in_chain_order.new_zeros(value_in_chain_order.shape[:-1] + (1,))
            padded = torch.cat([value_in_chain_order, zero], -1)
            gathered = padded[..., self._parents]  # [..., B, M, K]
            if self._weights.dim() == 2:
                context = torch.einsum("...bmk,mk->...bm", gathered, self._weights)
            else:
                context = torch.einsum("...bmk,bmk->...bm", gathered, self._weights)
        elif self._weights.dim() == 2:
            context = value_in_chain_order @ self._weights.T
        else:
            context = torch.einsum("...bk,bjk->...bj", value_in_chain_order, self._weights)
        return self._unary + context

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        value = self._as_label_sets(value).to(self._unary.dtype)
        ordered = value[..., self.order]
        logits = self.chain_logits(ordered)
        return -F.binary_cross_entropy_with_logits(logits, ordered.expand_as(logits), reduction="none").sum(-1)

    def flip_log_probs(self, value: torch.Tensor) -> torch.Tensor | None:
        """log p of each single-label flip of ``value [B, M]``, ``[B, M]`` (entry j: label j
        flipped), from the teacher-forced logits: flipping position t changes its own factor
        and, by +-W, the logit of each position that has t as a parent. O(B M K) for a sparse
        chain, instead of M log_prob calls (``[M, B, M]``); None for a dense chain."""
        if not self.sparse:
            return None
        value = self._as_label_sets(value).to(self._unary.dtype)
        ordered = value[..., self.order]  # [B, M] chain order
        logits = self.chain_logits(ordered)
        sign = 2.0 * ordered - 1.0  # +1 on, -1 off
        own = F.logsigmoid(-sign * logits) - F.logsigmoid(sign * logits)  # own factor after the flip, minus before
        b, m = ordered.shape
        k = self._parents.shape[1]
        real = self._parents < m  # [M, K]
        parent = self._parents.clamp_max(m - 1)
        weights = self._weights if self._weights.dim() == 3 else self._weights.expand(b, -1, -1)  # [B, M, K]
        change = weights * (1.0 - 2.0 * ordered[:, parent])  # [B, M(child), K]: the child's logit change
        child_logit = logits[:, :, None]
        child_sign = sign[:, :, None]
        delta = (F.logsigmoid(child_sign * (child_logit + change)) - F.logsigmoid(child_sign * child_logit)) * real
        flips = own.index_add(1, parent.reshape(-1), delta.reshape(b, m * k))  # sum over each parent's children
        log_p = F.logsigmoid(sign * logits).sum(-1, keepdim=True)
        return self._to_label_order(log_p + flips)

    def _step_logit(self, prefix: torch.Tensor, t: int, slot_index: torch.Tensor | None = None) -> torch.Tensor:
        """Logit ``[..., B]`` of position ``t`` given the values before it: the one place
        (sampling and beam search) that computes a position's context.

        Dense chain: ``prefix [..., B, t]`` (positions last), O(t) per row. Sparse chain:
        ``prefix [T, ..., B]`` with ``T >= t`` (positions first, see :meth:`_positions_first`;
        only the parents of ``t``, all earlier, are read), O(K) per row; with ``slot_index
        [M + 1]`` (the beam search's live slots), position p's value is row ``slot_index[p]``."""
        if self.sparse:
            count = self._n_parents[t]
            rows = self._parents[t, :count] if slot_index is None else slot_index[self._parents[t, :count]]
            values = prefix.index_select(0, rows)  # [count, ..., B]
            if self._weights.dim() == 2:
                context = torch.tensordot(self._weights[t, :count], values, 1)
            else:
                context = torch.einsum("k...b,bk->...b", values, self._weights[:, t, :count])
        elif self._weights.dim() == 2:
            context = prefix @ self._weights[t, :t]
        else:
            context = torch.einsum("...bk,bk->...b", prefix, self._weights[:, t, :t])
        return self._unary[:, t] + context

    def _ancestral(self, noise: Noise, record_probs: bool = False, nonempty: bool = False,
                   totals: torch.Tensor | None = None, draws: bool = True):
        """Ancestral sampling of ``noise.n`` chains per row: position ``t`` is on iff its
        uniform is below p(y_t = 1 | prefix). Returns the draws ``[n, B, M]`` (chain order)
        and, if ``record_probs``, the Rao-Blackwellised values E[y_t | what came before]
        ``[n, B, M]``.

        ``nonempty``: draws given y != 0. The first position that is on is drawn first (one
        inverse-CDF uniform per sample): with an all-zero prefix the context is 0, so
        P(first on = t) is proportional to prod_{s<t} sigmoid(-u_s) * sigmoid(u_t); the
        positions before it are off, it is on (their recorded values are 0 and 1), the rest
        follow the chain.

        ``totals`` and ``draws``: a sparse chain's running sums of the conditionals and whether
        every position's draws are wanted (see :meth:`_ancestral_by_levels`)."""
        b, m = self._unary.shape
        n = noise.n
        dtype, device = self._unary.dtype, self._unary.device
        uniforms = noise.uniform("labels", m).permute(2, 0, 1).contiguous()  # [M, n, R]: position-major
        first = None
        if nonempty:
            first = categorical(torch.softmax(first_on_log_probs(self._unary), -1), noise.uniform("first", 1))
        if self.sparse:
            return self._ancestral_by_levels(uniforms, first, record_probs, totals, draws)
        shape = (m, n, b) if self._positions_first else (n, b, m)
        ordered = torch.zeros(shape, dtype=dtype, device=device)
        conditionals = torch.zeros_like(ordered) if record_probs else None
        for t in range(m):
            prefix = ordered if self._positions_first else ordered[..., :t]
            p = torch.sigmoid(self._step_logit(prefix, t))  # [n, B]
            y = (uniforms[t] < p).to(dtype)
            if first is not None:
                before, at = first > t, first == t  # off before the first on position, on at it
                y = y.masked_fill(before, 0.0).masked_fill_(at, 1.0)
                p = p.masked_fill(before, 0.0).masked_fill_(at, 1.0)
            if self._positions_first:
                ordered[t] = y
                if record_probs:
                    conditionals[t] = p
            else:
                ordered[..., t] = y
                if record_probs:
                    conditionals[..., t] = p
        if self._positions_first:  # views [n, B, M]
            ordered = ordered.permute(1, 2, 0)
            conditionals = conditionals.permute(1, 2, 0) if record_probs else None
        return ordered, conditionals

    def _ancestral_by_levels(self, uniforms: torch.Tensor, first: torch.Tensor | None, record_probs: bool,
                             totals: torch.Tensor | None = None, draws: bool = True):
        """:meth:`_ancestral` of a sparse chain, many positions at a time: a position depends
        only on its parents, so every position of one level of the parent graph (see
        :class:`_SparseStructure`) is drawn in one vectorised step. Each position still compares
        its own uniforms with its own conditional probability, so the draws are those of the
        position-by-position loop (up to the rounding of the K-term context sums, added here
        slot by slot); the Python loop runs over groups (about the graph's depth: ~130 steps
        at M = 10,000 on ICD-like labels) instead of M positions.

        ``totals [M, B]`` (chain order): the conditionals' block sums (one noise block at a
        time, in draw order, as :func:`_add_block_sums`; within a block by
        :func:`_pairwise_sum`) are added into it in place, except for
        positions without parents when ``first`` is None (their conditional is the constant
        sigmoid(u): see :meth:`_monte_carlo_marginals`); nothing ``[n, B, M]`` is kept for them.
        ``draws=False``: only the positions that a later position reads are drawn (the others'
        rows of the returned draws are undefined): what the marginals alone need.

        Returns views ``[n, B, M]`` of position-major tensors, as :meth:`_ancestral`."""
        b, m = self._unary.shape
        n = uniforms.shape[1]
        dtype, device = self._unary.dtype, self._unary.device
        ordered = torch.empty(m + 1, n, b, dtype=dtype, device=device)  # every row 0..M-1 is written below
        ordered[m] = 0.0  # row M: the padding parent
        conditionals = torch.zeros(m, n, b, dtype=dtype, device=device) if record_probs else None
        per_row = self._weights.dim() == 3
        unary = self._unary.T  # [M, B]
        size = max(1, LEVEL_GROUP_VALUES // max(n * b, 1))
        for group, parents, readers in self._structure.groups(size, self._parents):
            count = parents.shape[1]  # parents sorted real first: slots >= count are padding in the whole group
            weights = None
            if count:
                weights = (self._weights[:, group, :count].permute(1, 2, 0)[:, :, None, :] if per_row
                           else self._weights[group, :count][:, :, None, None])  # [G, C, 1, B] or [G, C, 1, 1]
            context = None
            for slot in range(count):
                values = ordered.index_select(0, parents[:, slot])  # [G, n, B]
                weight = weights[:, slot]
                context = values.mul_(weight) if context is None else context.addcmul_(values, weight)
            logit = unary.index_select(0, group)[:, None, :]  # [G, 1, B]
            p = torch.sigmoid(logit if context is None else context.add_(logit))  # [G, n, B] or [G, 1, B]
            if first is not None:
                p = p.expand(-1, n, -1)
                position = group[:, None, None]
                before, at = first[None] > position, first[None] == position
                p = p.masked_fill(before, 0.0).masked_fill_(at, 1.0)
            drawn = len(group) if draws else readers  # without draws: only positions a later one reads
            if drawn:
                # masked p is 0 before the first on position and 1 at it, so the comparison gives y there too
                y = (uniforms.index_select(0, group[:drawn]) < p[:drawn]).to(dtype)
                ordered.index_copy_(0, group[:drawn], y.expand(-1, n, b))
            if record_probs:
                conditionals[group] = p.expand(-1, n, -1)
            if totals is not None and (count or first is not None):
                # each noise block summed by halves, then the blocks added to the totals in order (a
                # cumulative sum is a sequential scan): chunking by blocks cannot change the result
                p = p.expand(-1, n, -1)
                full = n - n % NOISE_BLOCK
                blocks = []
                if full:
                    blocks.append(_pairwise_sum(p[:, :full].reshape(len(group), full // NOISE_BLOCK, NOISE_BLOCK, -1)))
                if full < n:
                    blocks.append(_pairwise_sum(p[:, full:])[:, None])
                running = torch.cat([totals.index_select(0, group)[:, None], *blocks], 1).cumsum(1)
                totals.index_copy_(0, group, running[:, -1])
        ordered = ordered[:m].permute(1, 2, 0) if draws else None
        return ordered, (conditionals.permute(1, 2, 0) if record_probs else None)

    @property
    def _structure(self) -> "_SparseStructure":
        if "_structure_cache" not in self.__dict__:
            self._structure_cache = _structure_of(self._parents)
        return self._structure_cache

    @property
    def _positions_first(self) -> bool:
        """Sampling and beam search keep a sparse chain's values position-major (``[M, n, B]``),
        so that a step reads its K parents as K contiguous rows (reading K columns of
        ``[n, B, M]`` is ~70 times slower at M = 10,000); a dense chain keeps ``[n, B, M]``,
        whose prefix is one matrix-vector product (and today's numbers stay bit for bit)."""
        return self.sparse

    def _to_label_order(self, ordered: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(ordered)
        out[..., self.order] = ordered
        return out

    def sample_with(self, noise: Noise) -> torch.Tensor:
        with torch.no_grad():
            return self._to_label_order(self._ancestral(noise)[0])

    def log_prob_nonempty(self) -> torch.Tensor:
        """log P(y != 0): with an all-zero prefix the context is 0, so this is the independent
        labels' formula on the input logits (in chain order)."""
        return torch.logsumexp(first_on_log_probs(self._unary), -1)

    def sample_nonempty_with(self, noise: Noise) -> torch.Tensor:
        """Exact samples given y != 0 (see :meth:`_ancestral`)."""
        with torch.no_grad():
            return self._to_label_order(self._ancestral(noise, nonempty=True)[0])

    # ------------------------------------------------------------------ derived
    def _monte_carlo_marginals(self, nonempty: bool = False) -> torch.Tensor:
        """Rao-Blackwellised marginals ``[B, M]``: the average over ``n_mc_samples`` chains of
        p(y_t = 1 | sampled prefix) rather than of y_t (of p given y != 0 if ``nonempty``).

        Chains run in chunks of samples; per-block sums are added in a fixed order, block by
        block, so the result is the same bit for bit whatever the chunk size."""
        def compute():
            noise = self.common_noise("mc-nonempty" if nonempty else "mc", self.n_mc_samples)
            chunk = self._mc_chunk(1)  # two float32 tensors [chunk, B, M]
            total = self._new_totals()
            for start in range(0, noise.n, chunk):
                count = min(chunk, noise.n - start)
                _, conditionals = self._ancestral(noise.part(start, count), record_probs=not self.sparse,
                                                  nonempty=nonempty, totals=total, draws=False)
                if not self.sparse:
                    total = _add_block_sums(total, conditionals)
            return self._finish_marginals(total, noise.n, nonempty)
        return self._mc_cached(("marginals", nonempty), compute)

    def _new_totals(self) -> torch.Tensor | None:
        """The running sums of a sparse chain's Monte Carlo conditionals, ``[M, B]`` (chain
        order); None for a dense chain (:func:`_add_block_sums` starts them)."""
        if not self.sparse:
            return None
        return torch.zeros(self.n_labels, self.batch_size, dtype=self._unary.dtype, device=self._unary.device)

    def _finish_marginals(self, total: torch.Tensor, n: int, nonempty: bool) -> torch.Tensor:
        """Marginals ``[B, M]`` (label order) from the sums of ``n`` draws' conditionals. A
        sparse chain's positions without parents get sigmoid(u) itself, the exact value of
        the average of that constant (unless ``nonempty``: the first-on draw moves them)."""
        if not self.sparse:
            return self._to_label_order(total / n)
        marginals = (total / n).T.contiguous()
        if not nonempty:
            parentless = torch.as_tensor(self._structure.parentless, dtype=torch.long, device=total.device)
            marginals[:, parentless] = torch.sigmoid(self._unary[:, parentless])
        return self._to_label_order(marginals)

    def _monte_carlo_count_marginals(self, nonempty: bool = False) -> torch.Tensor:
        """Count marginals ``[B, M, M+1]`` from the Monte Carlo draws, computed in the same pass of
        ancestral sampling as the Rao-Blackwellised marginals, which are cached too: both use the
        same noise stream, hence the same draws, so a caller that needs both (GFM's decoder, then
        the marginals a server reports) pays for one pass instead of two. The values are bit for
        bit those of the two separate passes (block sums in the same order, exact counts)."""
        results = self.__dict__.setdefault("_mc_results", {})
        key = ("count_marginals", nonempty)
        if key in results or ("marginals", nonempty) in results:  # nothing to share
            return super()._monte_carlo_count_marginals(nonempty)
        with torch.no_grad():
            noise = self.common_noise("mc-nonempty" if nonempty else "mc", self.n_mc_samples)
            chunk = self._mc_chunk(4)  # as the draws-only pass: the draws, their noise and the count index
            total, counts = self._new_totals(), None
            for start in range(0, noise.n, chunk):
                count = min(chunk, noise.n - start)
                ordered, conditionals = self._ancestral(noise.part(start, count), record_probs=not self.sparse,
                                                        nonempty=nonempty, totals=total)
                if not self.sparse:
                    total = _add_block_sums(total, conditionals)
                part = count_marginals_of_draws(self._to_label_order(ordered))
                counts = part if counts is None else counts + part
            results[("marginals", nonempty)] = self._finish_marginals(total, noise.n, nonempty)
            results[key] = (counts / self.n_mc_samples).to(torch.get_default_dtype())
        return results[key]

    def marginals(self) -> torch.Tensor:
        if self.n_labels <= self.enumerate_max_labels:
            return super().marginals()
        return self._monte_carlo_marginals()

    def _beam_search(self, width: int) -> torch.Tensor:
        """Beam search along the chain: the ``[B, K, M]`` best label sets found (chain order),
        best first; exact top-K when the beam holds every prefix (``width >= 2^(M-1)``)."""
        b, m = self._unary.shape
        if self._positions_first:
            return self._beam_search_positions_first(width)
        with torch.no_grad():
            beams = torch.zeros(b, 1, 0, dtype=self._unary.dtype, device=self._unary.device)
            scores = torch.zeros(b, 1, dtype=self._unary.dtype, device=self._unary.device)
            for t in range(m):
                logit = self._step_logit(beams.transpose(0, 1), t).T  # [B, K]
                # extend every beam with y_t = 0 and y_t = 1
                extended_scores = torch.stack([scores + F.logsigmoid(-logit), scores + F.logsigmoid(logit)], -1)
                extended_scores = extended_scores.reshape(b, -1)  # [B, 2K], index = 2*beam + bit
                keep = min(width, extended_scores.shape[1])
                scores, index = extended_scores.topk(keep, dim=1)
                parent = torch.div(index, 2, rounding_mode="floor")
                bit = (index % 2).to(beams.dtype)
                beams = torch.cat([beams.gather(1, parent[..., None].expand(-1, -1, t)), bit[..., None]], -1)
        return beams

    def _beam_search_positions_first(self, width: int) -> torch.Tensor:
        """:meth:`_beam_search` of a sparse chain, in O(M K B) memory and mostly many positions
        per step.

        * No prefix copies: a beam keeps only the values of the positions that a later position
          still reads (its *live* parents, one slot each, freed after their last reader; at
          M = 10,000 on ICD-like labels at most ~700 are live), and each step records
          back-pointers and bits, read back at the end.
        * Positions where nothing can change are passed in blocks: once the beam is full, the
          logits of the next positions are computed at once assuming they are all off (their
          parents' values are then known). Where, in every row, every beam extended with 0
          scores above every beam extended with 1 (by a margin far above rounding), the top-K
          of the ``2K`` extensions are the K beams extended with 0: the step is the identity
          on the beams and adds log sigmoid(-logit) to each score, done here without sorting.
          The first position where some row fails the test is a regular step. Rare codes,
          whose factor is far below 1/2 in every beam, are most positions at many labels.

        The beams found are those of the position-by-position search (up to the order of beams
        of equal score); the result ``[B, K, M]`` is sorted by score, best first."""
        b, m = self._unary.shape
        dtype, device = self._unary.dtype, self._unary.device
        slot_of, high = self._structure.beam_slots()
        padding = max(high, default=0)  # the last slot stays 0: padding parents and in-block parents read it
        per_row = self._weights.dim() == 3
        with torch.no_grad():
            slots = torch.zeros(padding + 1, 1, b, dtype=dtype, device=device)
            slot_index = torch.as_tensor([padding if s < 0 else s for s in slot_of] + [padding], device=device)
            parent_slots = slot_index[self._parents]  # [M, K]
            scores = torch.zeros(b, 1, dtype=dtype, device=device)
            pointers: list[torch.Tensor | None] = [None] * m  # None: beams kept, this position off in all
            bits: list[torch.Tensor | None] = [None] * m
            t, guess = 0, 8  # block length: twice the last run of passed positions (at least 8)
            while t < m:
                k = scores.shape[1]
                full = 2 * k > width
                length = min(m - t, max(1, BEAM_BLOCK_VALUES // (k * b)), guess) if full else 1
                logits = self._block_logits(slots, parent_slots, t, length, padding, per_row)  # [L, K, B]
                off, on = F.logsigmoid(-logits), F.logsigmoid(logits)
                skipped = 0
                if full:
                    before = scores.T[None] + (off.cumsum(0) - off)  # [L, K, B]: the scores if all before are off
                    best_on, worst_off = (before + on).amax(1), (before + off).amin(1)  # [L, B]
                    margin = 1e-4 * (1.0 + worst_off.abs())
                    passes = (best_on < worst_off - margin).all(1).tolist()
                    skipped = passes.index(False) if False in passes else length
                    guess = max(8, 2 * skipped)
                    for i in range(skipped):
                        scores = scores + off[i].T
                    written = [slot_of[p] for p in range(t, t + skipped) if slot_of[p] >= 0]
                    if written:
                        slots[written] = 0.0
                if skipped < length:  # a regular step at position t + skipped
                    here = t + skipped
                    extended = torch.stack([scores + off[skipped].T, scores + on[skipped].T], -1).reshape(b, -1)
                    keep = min(width, extended.shape[1])
                    scores, index = extended.topk(keep, dim=1)  # index = 2 * beam + bit
                    parent = torch.div(index, 2, rounding_mode="floor").T  # [K, B]
                    bit = (index % 2).T
                    pointers[here] = parent.to(torch.int16)
                    bits[here] = bit.to(torch.bool)
                    live = high[here]  # slots that a later position reads are all below this
                    moved = torch.zeros(padding + 1, keep, b, dtype=dtype, device=device)
                    moved[:live] = slots[:live].gather(1, parent[None].expand(live, -1, -1))
                    slots = moved
                    if slot_of[here] >= 0:
                        slots[slot_of[here]] = bit.to(dtype)
                    skipped += 1
                t += skipped
            # read the beams back along the pointers, best final score first
            beams = torch.zeros(m, scores.shape[1], b, dtype=dtype, device=device)
            beam = scores.argsort(dim=1, descending=True, stable=True).T  # [K, B]
            for t in range(m - 1, -1, -1):
                if pointers[t] is not None:
                    beams[t] = bits[t].gather(0, beam).to(dtype)
                    beam = pointers[t].long().gather(0, beam)
        return beams.permute(2, 1, 0)  # [B, K, M]

    def _block_logits(self, slots, parent_slots, start: int, length: int, padding: int, per_row: bool):
        """Logits ``[L, K, B]`` of positions ``start .. start + L - 1`` for every beam, with the
        positions of the block itself taken as off (their slots read as the padding's 0)."""
        stop = start + length
        count = max(self._n_parents[start:stop])
        context = None
        for slot in range(count):
            parent = self._parents[start:stop, slot]
            rows = torch.where(parent >= start, padding, parent_slots[start:stop, slot])  # in-block or padding: 0
            values = slots.index_select(0, rows)  # [L, K, B]
            weight = (self._weights[:, start:stop, slot].T[:, None, :] if per_row
                      else self._weights[start:stop, slot][:, None, None])
            context = values.mul_(weight) if context is None else context.addcmul_(values, weight)
        logits = self._unary[:, start:stop].T[:, None, :]  # [L, 1, B]
        return logits.expand(-1, slots.shape[1], -1) if context is None else context.add_(logits)

    def mode(self, beam_size: int | None = None) -> torch.Tensor:
        """Beam search along the chain; exact when the beam holds every prefix (2^(M-1))."""
        return self._to_label_order(self._beam_search(beam_size or self.beam_size)[:, 0, :])

    @property
    def exact_nonempty_mode(self) -> bool:
        return "mode" in self.exact and self.beam_size >= 2

    def nonempty_mode(self, beam_size: int | None = None) -> torch.Tensor:
        """The best non-empty set among the final beams (a beam of 2 or more always holds one,
        so this is exact whenever :meth:`mode` is)."""
        beams = self._beam_search(max(beam_size or self.beam_size, 2))  # [B, K, M]
        first = (beams.sum(-1) > 0).to(torch.int8).argmax(1)  # first non-empty beam per row
        best = beams.gather(1, first[:, None, None].expand(-1, 1, beams.shape[-1]))[:, 0, :]
        return self._to_label_order(best)


def _real_parents_first(parents: torch.Tensor, weights: torch.Tensor):
    """Reorder each row of a sparse chain's ``parents [M, K]`` (each entry an earlier position
    or the padding ``M``; checked by ``arg_constraints``), with its weights, so that its real
    parents come first.

    Returns the parents, the weights (``[M, K]`` or ``[B, M, K]``) and the number of real
    parents of each position (a list, so that a step slices them without a device sync)."""
    m = parents.shape[0]
    if parents.dtype.is_floating_point or parents.dtype == torch.bool:
        raise ValueError(f"Expected `parents` of an integer dtype, got {parents.dtype}")
    parents = parents.to(device=weights.device, dtype=torch.long)
    padding = parents == m
    n_parents = (~padding).sum(1).tolist()
    if padding.shape[1] and bool((padding[:, :-1] & ~padding[:, 1:]).any()):  # padding before a real parent
        index = torch.argsort(padding.to(torch.int8), dim=1, stable=True)
        parents = parents.gather(1, index)
        weights = weights.gather(-1, index.expand_as(weights))
    return parents, weights, n_parents


class _SparseStructure:
    """What a sparse chain's sampling and beam search need from its parents alone (levels,
    groups, live slots), computed once per distinct ``parents`` (see :func:`_structure_of`):
    a head passes the same parents with every batch, and recomputing this (a Python pass over
    M positions) would cost more than sampling a small batch at M = 10,000."""

    def __init__(self, parents: list[list[int]], n_parents: list[int]):
        self.parents, self.n_parents = parents, n_parents
        self.levels = _parent_levels(parents, n_parents)
        self.parentless = [t for t, count in enumerate(n_parents) if count == 0]
        self._groups: dict = {}
        self._slots = None

    def groups(self, size: int, parents: torch.Tensor):
        """The levels split into groups of at most ``size`` positions: ``(positions [G], their
        parents [G, C] (C the most real parents any of them has), how many of them are read
        later)``, on the device of ``parents`` (the chain's ``[M, K]``)."""
        key = (size, parents.device)
        if key not in self._groups:
            groups = []
            for positions, n_read in self.levels:
                for lo in range(0, len(positions), size):
                    part = positions[lo : lo + size]
                    count = max(self.n_parents[t] for t in part)
                    index = torch.as_tensor(part, device=parents.device)
                    groups.append((index, parents[index, :count], min(max(n_read - lo, 0), len(part))))
            self._groups[key] = groups
        return self._groups[key]

    def beam_slots(self) -> tuple[list[int], list[int]]:
        """:func:`_live_slots` of these parents."""
        if self._slots is None:
            self._slots = _live_slots(self.parents, self.n_parents, len(self.parents))
        return self._slots


@functools.lru_cache(maxsize=8)
def _cached_structure(key: bytes, m: int, k: int) -> _SparseStructure:
    parents = torch.frombuffer(bytearray(key), dtype=torch.long).reshape(m, k)
    n_parents = (parents != m).sum(1).tolist()
    return _SparseStructure(parents.tolist(), n_parents)


def _structure_of(parents: torch.Tensor) -> _SparseStructure:
    """The :class:`_SparseStructure` of a sparse chain's ``parents [M, K]`` (real ones first),
    memoised by content: a pure function of the parents, like the noise blocks of
    :mod:`comorbid.distributions.noise` (at most 8 kept)."""
    m, k = parents.shape
    return _cached_structure(parents.detach().to("cpu", torch.long).contiguous().numpy().tobytes(), m, k)


def _live_slots(parents: list[list[int]], n_parents: list[int], m: int) -> tuple[list[int], list[int]]:
    """Slots for the beam search of a sparse chain: each position that a later position reads
    holds a slot from its own step to its last reader's step (lowest free slot first).

    Returns ``slot_of`` (position -> slot, -1 when no later position reads it) and ``high``:
    for each step t, one more than the highest slot still in use after step t (0 if none), so
    the slots a later step reads are all below ``high[t]``."""
    last = [-1] * m
    for t, (row, count) in enumerate(zip(parents, n_parents)):
        for p in row[:count]:
            last[p] = t
    ending: list[list[int]] = [[] for _ in range(m)]
    for p, t in enumerate(last):
        if t > p:
            ending[t].append(p)
    slot_of, free, high, in_use = [-1] * m, [], [], 0
    top: list[int] = []  # slots in use, as a max-heap (negated), lazily cleaned
    used = set()
    for t in range(m):
        if last[t] > t:
            slot = heapq.heappop(free) if free else len(used) + len(free)
            slot_of[t] = slot
            used.add(slot)
            heapq.heappush(top, -slot)
        for p in ending[t]:  # read for the last time at step t: free after it
            used.discard(slot_of[p])
            heapq.heappush(free, slot_of[p])
        while top and -top[0] not in used:
            heapq.heappop(top)
        high.append(-top[0] + 1 if top else 0)
    return slot_of, high


def _parent_levels(parents: list[list[int]], n_parents: list[int]) -> list[tuple[list[int], int]]:
    """Positions by level of a sparse chain's parent graph (parents ``[M, K]`` as lists, real
    ones first): level 0 has no parents, level l > 0 has its highest parent at level l - 1.
    Each level lists the positions that some later position reads (a parent) first, then the
    others, each part in chain order, with the number of the former. O(M K), one pass in chain
    order (every parent is an earlier position)."""
    level = [0] * len(parents)
    read = [False] * len(parents)
    by_level: list[list[int]] = []
    for t, (row, count) in enumerate(zip(parents, n_parents)):
        here = 1 + max(level[p] for p in row[:count]) if count else 0
        level[t] = here
        for p in row[:count]:
            read[p] = True
        if here == len(by_level):
            by_level.append([])
        by_level[here].append(t)
    out = []
    for positions in by_level:
        parents_first = [t for t in positions if read[t]]
        out.append((parents_first + [t for t in positions if not read[t]], len(parents_first)))
    return out


def _pairwise_sum(values: torch.Tensor) -> torch.Tensor:
    """The sum over dim -2 of ``values [..., S, B]`` by halves (elementwise additions only):
    the same rounding for every row whatever the shape, where ``sum`` picks its summation
    order by the strides (with one row, B = 1, it sums along the contiguous dimension)."""
    while values.shape[-2] > 1:
        half = values.shape[-2] // 2
        paired = values[..., :half, :] + values[..., half : 2 * half, :]
        values = torch.cat([paired, values[..., 2 * half :, :]], -2) if values.shape[-2] % 2 else paired
    return values[..., 0, :]


def _add_block_sums(total: torch.Tensor | None, conditionals: torch.Tensor) -> torch.Tensor:
    """``total`` plus the sum over draws of ``conditionals [S, B, M]``, summed one noise block at a
    time in draw order (so the result does not depend on how the draws were chunked)."""
    for lo in range(0, len(conditionals), NOISE_BLOCK):
        part = conditionals[lo : lo + NOISE_BLOCK].sum(0)
        total = part if total is None else total + part
    return total
