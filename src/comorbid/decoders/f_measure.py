"""The general F-measure maximiser (GFM; Dembczynski, Waegeman, Cheng & Huellermeier, NIPS 2011).

The expected instance F1 of a prediction h with |h| = k is

    E[F(h, y)] = sum_{j in h} sum_{s >= 1} P(y_j = 1, |y| = s) * 2 / (s + k),

plus P(y = 0) for the empty prediction when k = 0 (F(0, 0) = 1). For each k the best h takes the
k largest values of f_jk = sum_s P(y_j=1, |y|=s) * 2/(s+k); the best k wins. It needs only the
count marginals ``[B, M, M+1]`` and P(y = 0), and is exact for ANY joint distribution, dependent
labels included, in O(M^3) per row.

**At many labels: a shortlist** (:func:`shortlist_gfm`). Only the L labels of largest marginal
per row are candidates; GFM runs on their count marginals ``[B, L, S+1]``, where the size |y|
still counts every label (:meth:`JointLabelDistribution.shortlist_count_marginals`) and is
truncated at S. Memory ``O(B (M + L S))``. What it reports per row (:class:`ShortlistInfo`):
the marginal mass outside the shortlist, P(|y| > S), and an upper bound on the expected-F1
loss against the unrestricted optimum, from three facts:

1. every computed value underestimates the true one by at most P(|y| > S) (F1 <= 1);
2. a set of size k > L scores at most ``sum_{j in shortlist} f_{j,L+1} + 2 m_out / (L + 2)``,
   ``m_out`` the outside marginal mass (``f_jk`` falls with k, and an outside label j adds
   ``f_jk <= 2 p_j / (k + 1)`` since it only counts when |y| >= 1);
3. for k <= L, labels outside can add at most ``2 min(k p_max_out, m_out) / (k + 1)`` to the
   best set of size k; for independent labels (and independent labels given y != 0) nothing,
   because the optimal set of each size is the top-k set by marginal (Lewis, 1995, SIGIR;
   Ye, Chai, Lee & Chieu, 2012, ICML, "Optimizing F-measures: a tale of two approaches";
   the exchange argument of :mod:`comorbid.decoders.top_k_sets`), which lies in the shortlist.

The bound is 0, and the row is flagged exact, when the count marginals are exact, S covers
every size of positive probability and the best set beats the bound (2) on sets larger than L;
for independent labels that certifies that the optimal size is below L, and the shortlist then
gives the unrestricted optimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from comorbid.distributions.base import JointLabelDistribution

#: Rows whose loss bound is at most this are flagged exact (rounding of the values).
EXACT_TOLERANCE = 1e-12


@dataclass(frozen=True)
class ShortlistInfo:
    """What a shortlisted decision left out, per row.

    Attributes:
        shortlist: ``[B, L]`` the candidate labels (largest marginal first).
        outside_mass: ``[B]`` the sum of the marginals of the other labels (the expected number
            of true labels the decoder could not predict).
        size_tail: ``[B]`` P(|y| > S), the size mass the truncation at S left out (0 where not
            applicable).
        loss_bound: ``[B]`` an upper bound on the expected-utility loss against the best set
            over all labels, or None where the decoder states none.
        exact: ``[B]`` bool, rows certified optimal (loss bound 0 up to rounding, exact inputs).
    """

    shortlist: torch.Tensor
    outside_mass: torch.Tensor
    size_tail: torch.Tensor
    loss_bound: torch.Tensor | None
    exact: torch.Tensor


def _gains(count_marginals: torch.Tensor, max_k: int) -> torch.Tensor:
    """f_jk = sum_s P(y_j=1, |y|=s) 2/(s+k) for k = 1..max_k, ``[B, L, S+1] -> [B, L, max_k]``."""
    sizes = torch.arange(1, count_marginals.shape[-1], dtype=count_marginals.dtype, device=count_marginals.device)
    ks = torch.arange(1, max_k + 1, dtype=count_marginals.dtype, device=count_marginals.device)
    weights = 2.0 / (sizes[:, None] + ks[None, :])  # [s, k]
    return count_marginals[:, :, 1:] @ weights


def gfm_values(count_marginals: torch.Tensor, prob_empty: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected F1 of the best set of each size among the given labels.

    Args:
        count_marginals: ``[B, L, S+1]``, P(y_j = 1, |y| = s) for L labels (all M, or a shortlist).
        prob_empty: ``[B]``, P(y = 0) (``-inf`` to rule out the empty prediction).

    Returns:
        ``values [B, L+1]`` (``values[:, k]`` for the best set of size k) and ``order [B, L, L]``
        (column k-1: the labels ranked for size k).
    """
    m = count_marginals.shape[1]
    gains = _gains(count_marginals, m)  # [B, L(j), L(k)]
    sorted_gains, order = gains.sort(dim=1, descending=True, stable=True)
    best_sum = sorted_gains.cumsum(dim=1).diagonal(dim1=1, dim2=2)  # [B, k]: top-k of column k
    return torch.cat([prob_empty[:, None].to(best_sum.dtype), best_sum], dim=1), order


def _take(values: torch.Tensor, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The best size per row and the 0/1 choice over the L labels, ``[B]`` and ``[B, L]``."""
    b, m = order.shape[:2]
    best_k = values.argmax(dim=1)  # [B]
    # labels ranked within the column of the chosen k; take the first best_k of them
    column = (best_k - 1).clamp_min(0)
    ranked = order.gather(2, column[:, None, None].expand(-1, m, 1)).squeeze(2)  # [B, L]
    take = torch.arange(m, device=ranked.device)[None, :] < best_k[:, None]
    out = torch.zeros(b, m, dtype=torch.get_default_dtype(), device=ranked.device)
    return best_k, out.scatter_(1, ranked, take.to(out.dtype))


def gfm(count_marginals: torch.Tensor, prob_empty: torch.Tensor) -> torch.Tensor:
    """The F1-optimal label sets.

    Args:
        count_marginals: ``[B, M, M+1]``, P(y_j = 1, |y| = s).
        prob_empty: ``[B]``, P(y = 0).

    Returns:
        ``[B, M]`` 0/1 predictions.
    """
    b, m, _ = count_marginals.shape
    if m == 0:
        return count_marginals.new_zeros(b, 0)
    values, order = gfm_values(count_marginals, prob_empty)
    return _take(values, order)[1]


def shortlist(marginals: torch.Tensor, size: int) -> torch.Tensor:
    """The ``size`` labels of largest marginal per row, ``[B, M] -> [B, L]`` (ties to the lower
    index), largest first."""
    return marginals.argsort(dim=-1, descending=True, stable=True)[:, :size]


def default_max_size(marginals: torch.Tensor, shortlist_size: int) -> int:
    """Sizes S kept by default: ``max(L, mu + 10 sqrt(mu) + 10)`` over the rows, ``mu = E|y|``,
    at most M. For independent labels Var|y| <= mu, so by Bernstein's inequality the size mass
    beyond S is below ~1e-9 (and it is measured and reported, never assumed)."""
    mu = marginals.detach().double().sum(-1).max().item() if marginals.numel() else 0.0
    return int(min(marginals.shape[-1], max(shortlist_size, math.ceil(mu + 10.0 * math.sqrt(mu) + 10.0))))


def _top_k_optimal(dist: JointLabelDistribution) -> bool:
    """Whether the F1-optimal set of every size is the top-k set by marginal: independent labels,
    also given y != 0 (conditioning only removes y = 0, which a swap of two labels never reaches)."""
    from comorbid.distributions.independent import IndependentBernoulli
    from comorbid.distributions.nonempty import NonEmpty

    return isinstance(dist, IndependentBernoulli) or (isinstance(dist, NonEmpty) and isinstance(dist.base, IndependentBernoulli))


def shortlist_gfm(dist: JointLabelDistribution, shortlist_size: int, max_size: int | None = None,
                  nonempty: bool | None = None) -> tuple[torch.Tensor, ShortlistInfo]:
    """GFM on the top-``shortlist_size`` labels by marginal, every other label 0 (see the module
    docstring): ``[B, M]`` and the :class:`ShortlistInfo`.

    Args:
        dist: any distribution (count marginals exact where ``"count_marginals" in dist.exact``,
            else Monte Carlo).
        shortlist_size: L.
        max_size: S, the largest size |y| kept; default :func:`default_max_size`.
        nonempty: rule out the empty prediction (default: when the distribution excludes y = 0).
    """
    b, m = dist.batch_size, dist.n_labels
    length = min(shortlist_size, m)
    with torch.no_grad():
        marginals = dist.marginals().detach()
        labels = shortlist(marginals, length)
        size = min(m, max_size) if max_size is not None else default_max_size(marginals, length)
        counts, sizes, tail = dist.shortlist_count_marginals(labels, size)
    counts, sizes, tail = counts.double(), sizes.double(), tail.double()
    if nonempty is None:
        nonempty = dist.excludes_empty
    prob_empty = torch.full_like(tail, -torch.inf) if nonempty else sizes[:, 0]
    values, order = gfm_values(counts, prob_empty)
    best_k, chosen = _take(values, order)
    out = torch.zeros(b, m, dtype=torch.get_default_dtype(), device=chosen.device).scatter_(1, labels, chosen)

    outside_probs = marginals.double().scatter(1, labels, 0.0)
    outside = outside_probs.sum(-1)
    best = values.gather(1, best_k[:, None])[:, 0]
    bound = values.clone()
    if not _top_k_optimal(dist):
        ks = torch.arange(1, length + 1, dtype=values.dtype, device=values.device)
        extra = torch.minimum(ks * outside_probs.max(-1, keepdim=True).values, outside[:, None])
        bound[:, 1:] += 2.0 * extra / (ks + 1.0)
    upper = bound.max(1).values
    if length < m:  # sets larger than the shortlist
        larger = _gains(counts, length + 1)[:, :, -1].sum(1) + 2.0 * outside / (length + 2.0)
        upper = torch.maximum(upper, larger)
    loss_bound = (upper + tail - best).clamp_min(0.0)
    exact = (loss_bound <= EXACT_TOLERANCE) & ("count_marginals" in dist.exact)
    return out, ShortlistInfo(labels, outside.to(marginals.dtype), tail.to(marginals.dtype),
                              loss_bound.to(marginals.dtype), exact)
