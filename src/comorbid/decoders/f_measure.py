"""The general F-measure maximiser (GFM; Dembczynski, Waegeman, Cheng & Huellermeier, NIPS 2011).

The expected instance F1 of a prediction h with |h| = k is

    E[F(h, y)] = sum_{j in h} sum_{s >= 1} P(y_j = 1, |y| = s) * 2 / (s + k),

plus P(y = 0) for the empty prediction when k = 0 (F(0, 0) = 1). For each k the best h takes the
k largest values of f_jk = sum_s P(y_j=1, |y|=s) * 2/(s+k); the best k wins. It needs only the
count marginals ``[B, M, M+1]`` and P(y = 0), and is exact for ANY joint distribution, dependent
labels included, in O(M^3) per row.
"""

from __future__ import annotations

import torch



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
    sizes = torch.arange(1, m + 1, dtype=count_marginals.dtype, device=count_marginals.device)
    weights = 2.0 / (sizes[:, None] + sizes[None, :])  # [s, k]
    gains = count_marginals[:, :, 1:] @ weights  # [B, M(j), M(k)]
    sorted_gains, order = gains.sort(dim=1, descending=True, stable=True)
    best_sum = sorted_gains.cumsum(dim=1).diagonal(dim1=1, dim2=2)  # [B, k]: top-k of column k
    values = torch.cat([prob_empty[:, None], best_sum], dim=1)  # [B, k = 0..M]
    best_k = values.argmax(dim=1)  # [B]
    # labels ranked within the column of the chosen k; take the first best_k of them
    column = (best_k - 1).clamp_min(0)
    ranked = order.gather(2, column[:, None, None].expand(-1, m, 1)).squeeze(2)  # [B, M]
    take = torch.arange(m, device=ranked.device)[None, :] < best_k[:, None]
    out = torch.zeros(b, m, dtype=torch.get_default_dtype(), device=ranked.device)
    return out.scatter_(1, ranked, take.to(out.dtype))
