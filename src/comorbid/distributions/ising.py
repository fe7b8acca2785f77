"""Pairwise conditional random field over labels (an Ising model with input-dependent fields).

Collective multi-label classification (Ghamrawi & McCallum, CIKM 2005):

    p(y | x) = exp(u(x) . y + sum_{j<k} C_jk y_j y_k) / Z(x)

with unary fields ``u(x)`` from the input and couplings ``C`` between label pairs (positive:
the labels attract, negative: they exclude each other). The strict upper triangle of the
``[M, M]`` coupling argument is used; the rest is ignored.

Exact regime (M <= ``max_exact_labels``, 16 by default, at most 20): Z(x) is a sum over all
2^M sets, computed in chunks so memory stays bounded; its gradient (the expected sufficient
statistics E[y], E[y y^T]) is computed by a second chunked pass rather than stored, so training
by the exact likelihood costs no memory beyond one chunk. Everything is then exact.

Beyond it, Z(x) is intractable in general:

- ``log_prob`` subtracts the naive mean-field lower bound on log Z (so it is approximate, and
  too high on average); comparisons between sets of one row are still exact;
- ``sample`` runs ``n_mc_samples`` independent Gibbs chains for ``gibbs_sweeps`` sweeps, started
  from the mean-field marginals (Geman & Geman, 1984, IEEE TPAMI 6);
- ``marginals`` and ``count_marginals`` are Rao-Blackwellised Gibbs averages over the second
  half of the sweeps (``inference="gibbs"``, the default) or the mean-field marginals and
  their Poisson-binomial counts (``inference="mean-field"``, deterministic, biased);
- ``mode`` is hill climbing over single-label flips (iterated conditional modes; Besag, 1986,
  JRSS B 48) from the thresholded mean-field marginals and a few Gibbs states.

Training beyond the exact regime uses the pseudo-likelihood (Besag, 1975, The Statistician 24),
``pseudo_log_prob``: sum_j log p(y_j | y_-j, x), which needs no Z.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import constraints

from comorbid.distributions import poisson_binomial
from comorbid.distributions.base import (
    MAX_ENUMERATE_LABELS,
    METHODS,
    JointLabelDistribution,
    ShortlistCounts,
    all_label_sets,
)
from comorbid.distributions.noise import Noise

#: Default size of the exact regime: Z by enumerating 2^16 = 65,536 sets per row.
DEFAULT_MAX_EXACT_LABELS = 16
INFERENCE = ("auto", "gibbs", "mean-field")
#: Elements (sets x rows x labels) one chunk of the enumeration holds.
_CHUNK_BUDGET = 2**22


def symmetric_couplings(couplings: torch.Tensor) -> torch.Tensor:
    """The symmetric, zero-diagonal matrix J with J_jk = J_kj = C_jk for j < k, ``[..., M, M]``."""
    upper = torch.triu(couplings, diagonal=1)
    return upper + upper.transpose(-1, -2)


def _energies(unary: torch.Tensor, symmetric: torch.Tensor, sets: torch.Tensor) -> torch.Tensor:
    """u . s + s^T J s / 2 for every row and set, ``[B, M], [M, M] | [B, M, M], [C, M] -> [B, C]``."""
    linear = unary @ sets.T
    if symmetric.dim() == 2:
        return linear + 0.5 * ((sets @ symmetric) * sets).sum(-1)
    return linear + 0.5 * (torch.einsum("bmn,cn->bcm", symmetric, sets) * sets).sum(-1)


def _set_chunks(n_labels: int, batch_size: int, dtype, device, skip_empty: bool = False):
    sets = all_label_sets(n_labels, device=device, dtype=dtype)[int(skip_empty):]
    chunk = max(1, _CHUNK_BUDGET // max(1, batch_size * max(n_labels, 1)))
    for start in range(0, len(sets), chunk):
        yield sets[start : start + chunk]


class _ExactLogPartition(torch.autograd.Function):
    """log Z = logsumexp over all 2^M sets of the energy, with a recomputing backward pass:
    d log Z / d u = E[y] and d log Z / d J = E[y y^T] / 2, accumulated chunk by chunk.
    ``skip_empty``: over the non-empty sets only (log of Z - 1, without the cancellation)."""

    @staticmethod
    def forward(ctx, unary, symmetric, skip_empty=False):
        b, m = unary.shape
        log_z = torch.full((b,), -torch.inf, dtype=unary.dtype, device=unary.device)
        for sets in _set_chunks(m, b, unary.dtype, unary.device, skip_empty):
            log_z = torch.logaddexp(log_z, torch.logsumexp(_energies(unary, symmetric, sets), -1))
        ctx.save_for_backward(unary, symmetric, log_z)
        ctx.skip_empty = skip_empty
        return log_z

    @staticmethod
    def backward(ctx, grad):
        unary, symmetric, log_z = ctx.saved_tensors
        b, m = unary.shape
        first = torch.zeros_like(unary)
        second = torch.zeros_like(symmetric)
        for sets in _set_chunks(m, b, unary.dtype, unary.device, ctx.skip_empty):
            probs = (_energies(unary, symmetric, sets) - log_z[:, None]).exp()  # [B, C]
            first += probs @ sets
            if symmetric.dim() == 2:
                weights = grad @ probs  # [C]: the batch's gradient folded in first
                second += (sets.T * weights) @ sets
            else:
                second += torch.einsum("bc,cm,cn->bmn", probs, sets, sets)
        grad_unary = grad[:, None] * first if ctx.needs_input_grad[0] else None
        grad_symmetric = None
        if ctx.needs_input_grad[1]:
            grad_symmetric = 0.5 * (second if symmetric.dim() == 2 else grad[:, None, None] * second)
        return grad_unary, grad_symmetric, None


class IsingLabels(JointLabelDistribution):
    """A batch of pairwise label CRFs.

    Args:
        unary_logits: ``[B, M]`` input-dependent fields u(x).
        couplings: ``[M, M]`` (shared) or ``[B, M, M]``; entry ``[j, k]`` with ``j < k`` couples
            labels j and k (the rest is ignored).
        max_exact_labels: up to this many labels Z is computed exactly by enumeration (at most
            20).
        inference: ``"auto"`` (enumeration in the exact regime, Gibbs beyond), ``"gibbs"`` or
            ``"mean-field"`` for marginals, count marginals and mode even when M is small.
        n_mc_samples: Gibbs chains.
        gibbs_sweeps: sweeps per chain (the second half are averaged).
        mean_field_iterations: damped fixed-point iterations of mean field at most.
    """

    arg_constraints = {"unary_logits": constraints.real, "couplings": constraints.real}
    arg_shapes = {"unary_logits": "[B, M]", "couplings": "[M, M] or [B, M, M]"}

    def __init__(
        self,
        unary_logits: torch.Tensor,
        couplings: torch.Tensor,
        max_exact_labels: int = DEFAULT_MAX_EXACT_LABELS,
        inference: str = "auto",
        n_mc_samples: int = 200,
        gibbs_sweeps: int = 20,
        mean_field_iterations: int = 200,
        validate_args: bool | None = None,
    ):
        size = self._check_shapes(unary_logits=unary_logits, couplings=couplings)
        if not 0 <= max_exact_labels <= MAX_ENUMERATE_LABELS:
            raise ValueError(f"Expected 0 <= max_exact_labels <= {MAX_ENUMERATE_LABELS}, got {max_exact_labels}")
        if inference not in INFERENCE:
            raise ValueError(f"Expected `inference` in {INFERENCE}, got {inference!r}")
        if gibbs_sweeps < 2 or n_mc_samples < 1:
            raise ValueError(f"Expected gibbs_sweeps >= 2 and n_mc_samples >= 1, got {gibbs_sweeps}, {n_mc_samples}")
        self.unary_logits = unary_logits
        self.couplings = couplings
        self.symmetric = symmetric_couplings(couplings)
        self.max_exact_labels = max_exact_labels
        self.inference = inference
        self.n_mc_samples = n_mc_samples
        self.gibbs_sweeps = gibbs_sweeps
        self.mean_field_iterations = mean_field_iterations
        self._log_z_cache: torch.Tensor | None = None
        self._mean_field_cache: torch.Tensor | None = None
        self._gibbs_cache = None
        super().__init__(size["B"], size["M"], validate_args)
        self.enumerate_max_labels = max_exact_labels

    def tempered(self, temperature: float) -> "IsingLabels":
        """Fields and couplings divided by ``temperature``: p(y)^(1/T), renormalised."""
        return IsingLabels(
            self.unary_logits / temperature, self.couplings / temperature, self.max_exact_labels, self.inference,
            self.n_mc_samples, self.gibbs_sweeps, self.mean_field_iterations, self._validate_args,
        ).with_seed(self.seed)

    def with_seed(self, seed: int) -> "IsingLabels":
        self._gibbs_cache = None
        return super().with_seed(seed)

    # ------------------------------------------------------------------ regimes
    @property
    def is_exact(self) -> bool:
        """Whether Z (hence log_prob) is computed exactly."""
        return self.n_labels <= self.max_exact_labels

    @property
    def method(self) -> str:
        """How marginals, count marginals and mode are computed: enumeration, gibbs or mean-field."""
        if self.inference == "auto":
            return "enumeration" if self.is_exact else "gibbs"
        return self.inference

    @property
    def exact(self) -> frozenset[str]:
        if self.method == "enumeration":
            return METHODS
        return frozenset({"log_prob"}) if self.is_exact else frozenset()

    # ------------------------------------------------------------------ core
    def energy(self, value: torch.Tensor) -> torch.Tensor:
        """Unnormalised log probability u . y + sum_{j<k} C_jk y_j y_k, ``[..., B, M] -> [..., B]``."""
        value = value.to(self.unary_logits.dtype)
        if self.symmetric.dim() == 2:
            pair = (value @ self.symmetric) * value
        else:
            pair = torch.einsum("...bk,bjk->...bj", value, self.symmetric) * value
        return (value * self.unary_logits).sum(-1) + 0.5 * pair.sum(-1)

    def log_partition(self) -> torch.Tensor:
        """log Z(x), ``[B]``: exact in the exact regime, else the mean-field lower bound."""
        if not self.is_exact:
            with torch.no_grad():
                return self._mean_field_log_partition()
        if torch.is_grad_enabled():  # a fresh graph each time: safe to backward through twice
            return _ExactLogPartition.apply(self.unary_logits, self.symmetric)
        if self._log_z_cache is None:
            self._log_z_cache = _ExactLogPartition.apply(self.unary_logits, self.symmetric)
        return self._log_z_cache

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        value = self._as_label_sets(value)
        return self.energy(value) - self.log_partition()

    def log_prob_nonempty(self) -> torch.Tensor:
        """log P(y != 0) = log Z_{y != 0} - log Z, both by enumeration in the exact regime (no
        cancellation when p(0) is near 1); beyond it ``log(1 - p(0))`` from the mean-field Z."""
        if not self.is_exact or self.n_labels == 0:
            return super().log_prob_nonempty()
        return _ExactLogPartition.apply(self.unary_logits, self.symmetric, True) - self.log_partition()

    def local_fields(self, value: torch.Tensor) -> torch.Tensor:
        """Logit of p(y_j = 1 | y_-j, x) for every j, ``[..., B, M]``."""
        value = value.to(self.unary_logits.dtype)
        if self.symmetric.dim() == 2:
            return self.unary_logits + value @ self.symmetric
        return self.unary_logits + torch.einsum("...bk,bjk->...bj", value, self.symmetric)

    def conditional_log_probs(self, value: torch.Tensor) -> torch.Tensor:
        """log p(y_j | y_-j, x) from the local fields, ``[..., B, M]``, no Z: what the
        pseudo-likelihood (Besag, 1975) sums, the training objective beyond the exact regime."""
        value = self._as_label_sets(value).to(self.unary_logits.dtype)
        fields = self.local_fields(value)
        return -F.binary_cross_entropy_with_logits(fields, value.expand_as(fields), reduction="none")

    def _enumeration_log_probs(self, sets: torch.Tensor) -> torch.Tensor:
        sets = sets.to(self.unary_logits.dtype)
        return _energies(self.unary_logits, self.symmetric, sets) - self.log_partition()[:, None]

    # ------------------------------------------------------------------ approximate inference
    def mean_field(self) -> torch.Tensor:
        """Naive mean-field marginals q ``[B, M]``: damped fixed point of q = sigmoid(u + J q)."""
        if self._mean_field_cache is None:
            with torch.no_grad():
                u = self.unary_logits
                q = torch.sigmoid(u)
                for _ in range(self.mean_field_iterations):
                    new = torch.sigmoid(self.local_fields(q))
                    step = (new - q).abs().max() if q.numel() else torch.zeros(())
                    q = 0.5 * q + 0.5 * new  # damping: undamped parallel updates can oscillate
                    if step < 1e-7:
                        break
            self._mean_field_cache = q
        return self._mean_field_cache

    def _mean_field_log_partition(self) -> torch.Tensor:
        q = self.mean_field()
        entropy = -(torch.xlogy(q, q) + torch.xlogy(1 - q, 1 - q)).sum(-1)
        return self.energy(q) + entropy

    def _gibbs(self, noise: Noise, sweeps: int, record: bool, nonempty: bool = False):
        """``noise.n`` independent chains per row, driven by ``noise`` (the initial state by
        its tag ``init``, sweep ``i`` by ``sweep-i``: one uniform per chain and site); returns the final states ``[n, B, M]`` and,
        if ``record``, Rao-Blackwellised marginals ``[B, M]`` and count marginals ``[B, M, M+1]``
        averaged over the second half of the sweeps: at each site update the conditional
        p(y_j = 1 | y_-j) is credited to (j, 1 + the number of other labels on).

        ``nonempty`` (final states only): Gibbs sampling of p(y | y != 0): chains start
        non-empty, and a site whose other labels are all off is set on (its conditional given
        y != 0); single flips still connect every pair of non-empty sets."""
        if record and nonempty:
            raise ValueError("Gibbs estimates given y != 0 are not recorded; draw samples instead")
        b, m = self.unary_logits.shape
        n_chains = noise.n
        with torch.no_grad():
            start = self.mean_field().clamp(0.05, 0.95)
            # Label-major layout [M, n, B]: a site's values are one contiguous block.
            init = noise.uniform("init", m).permute(2, 0, 1)  # [M, n, R]
            state = (init < start.T[:, None, :]).to(start.dtype).contiguous()
            if nonempty:
                most_likely = torch.nn.functional.one_hot(start.argmax(-1), m).T[:, None, :].to(state.dtype)
                state = torch.where(state.sum(0, keepdim=True) == 0, most_likely, state)
                on = state.sum(0)  # [n, B]
            unary = self.unary_logits.T[:, None, :]  # [M, 1, B]
            shared = self.symmetric.dim() == 2
            per_row = None if shared else self.symmetric.permute(1, 2, 0)[:, :, None, :]  # [M, M, 1, B]
            marginals = torch.zeros(m, b, dtype=state.dtype, device=state.device)
            counts = torch.zeros(m, b * (m + 1), dtype=state.dtype, device=state.device)
            row_offset = torch.arange(b, device=state.device) * (m + 1)  # flat index of (row, size 0)
            recorded = 0
            for sweep in range(sweeps):
                uniforms = noise.uniform(f"sweep-{sweep}", m).permute(2, 0, 1).contiguous()  # [M, n, R]
                keep = record and sweep >= sweeps // 2
                total = state.sum(0) if keep else None  # [n, B]
                for j in range(m):
                    if shared:
                        field = unary[j] + torch.tensordot(self.symmetric[j], state, dims=1)
                    else:
                        field = unary[j] + (per_row[j] * state).sum(0)
                    p = torch.sigmoid(field)  # [n, B]
                    new = (uniforms[j] < p).to(p.dtype)
                    if nonempty:
                        others = on - state[j]
                        new = torch.where(others == 0, torch.ones_like(new), new)
                        on = others + new
                    if keep:
                        rest = total - state[j]  # other labels on, [n, B]
                        marginals[j] += p.mean(0)
                        counts[j].index_add_(0, ((rest + 1).long() + row_offset).reshape(-1), p.reshape(-1))
                        total = rest + new
                    state[j] = new
                recorded += keep
            state = state.permute(1, 2, 0).contiguous()  # [n, B, M]
        if not record:
            return state, None, None
        counts = counts.reshape(m, b, m + 1).transpose(0, 1) / (recorded * n_chains)
        return state, marginals.T / recorded, counts

    def _gibbs_estimates(self):
        if self._gibbs_cache is None:
            noise = self.common_noise("mc", self.n_mc_samples)
            self._gibbs_cache = self._gibbs(noise, self.gibbs_sweeps, record=True)
        return self._gibbs_cache

    # ------------------------------------------------------------------ public methods
    def sample_with(self, noise: Noise) -> torch.Tensor:
        with torch.no_grad():
            if self.method == "enumeration":
                return self._enumerated_sample(noise)
            return self._gibbs(noise, self.gibbs_sweeps, record=False)[0]

    def sample_nonempty_with(self, noise: Noise) -> torch.Tensor:
        """Given y != 0: exact by enumeration, else by Gibbs sampling of the conditional
        (approximate as ``sample``; never by rejection, which would repeat whole Gibbs runs)."""
        if self.method == "enumeration":
            return super().sample_nonempty_with(noise)
        return self._gibbs(noise, self.gibbs_sweeps, record=False, nonempty=True)[0]

    def marginals(self) -> torch.Tensor:
        if self.method == "enumeration":
            return self._enumerated_marginals()
        if self.method == "mean-field":
            return self.mean_field()
        return self._gibbs_estimates()[1]

    def count_marginals(self) -> torch.Tensor:
        if self.method == "enumeration":
            return self._enumerated_count_marginals()
        if self.method == "mean-field":
            return poisson_binomial.count_marginals(self.mean_field())
        return self._gibbs_estimates()[2]

    def shortlist_count_marginals(self, shortlist: torch.Tensor, max_size: int) -> ShortlistCounts:
        if self.method == "mean-field":
            return ShortlistCounts(*poisson_binomial.shortlist_count_marginals(self.mean_field(), shortlist, max_size))
        return super().shortlist_count_marginals(shortlist, max_size)

    def size_distribution(self) -> torch.Tensor:
        if self.method == "mean-field":
            return poisson_binomial.size_distribution(self.mean_field())
        return super().size_distribution()

    def mode(self, beam_size: int | None = None) -> torch.Tensor:
        if self.method == "enumeration":
            return self._enumerated_mode()
        with torch.no_grad():
            starts = [(self.mean_field() > 0.5).to(self.unary_logits.dtype)[:, None]]
            if self.method == "gibbs":
                states = self._gibbs_estimates()[0][: min(self.n_mc_samples, 32)]  # [n, B, M]
                starts.append(states.transpose(0, 1))
        return self._search_mode(torch.cat(starts, dim=1), score=self.energy)
