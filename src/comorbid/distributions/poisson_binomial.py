"""Counts of independent Bernoulli labels (the Poisson-binomial distribution).

Used for the exact ``count_marginals`` of the independent model and of every component of a
Bernoulli mixture. Written here because neither scipy nor torch offers a batched,
leave-one-out Poisson-binomial; the recursions are the textbook ones (Chen & Liu, 1997).
"""

from __future__ import annotations

import torch


def size_distribution(probs: torch.Tensor) -> torch.Tensor:
    """P(sum_j y_j = s), s = 0..M, for independent y_j ~ Bernoulli(probs_j).

    Args:
        probs: ``[..., M]``.

    Returns:
        ``[..., M+1]``.
    """
    m = probs.shape[-1]
    dist = torch.zeros(*probs.shape[:-1], m + 1, dtype=probs.dtype, device=probs.device)
    dist[..., 0] = 1.0
    for j in range(m):
        p = probs[..., j : j + 1]
        shifted = torch.nn.functional.pad(dist[..., :-1], (1, 0))
        dist = dist * (1.0 - p) + shifted * p
    return dist


def leave_one_out_size_distribution(probs: torch.Tensor) -> torch.Tensor:
    """P(sum_{i != j} y_i = k), k = 0..M-1, for every j, ``[..., M] -> [..., M, M]``.

    Divides label j out of the full distribution: forwards when p_j <= 1/2 and backwards when
    p_j > 1/2, the direction in which the recursion does not amplify rounding errors.
    """
    work = probs.double()
    full = size_distribution(work)  # [..., M+1]
    m = work.shape[-1]
    p = work.unsqueeze(-1)  # [..., M, 1]
    full = full.unsqueeze(-2).expand(*work.shape, m + 1)  # [..., M, M+1]
    forward = torch.zeros(*work.shape, m, dtype=work.dtype, device=work.device)
    backward = torch.zeros_like(forward)
    one_minus = (1.0 - p[..., 0]).clamp_min(1e-300)
    p_safe = p[..., 0].clamp_min(1e-300)
    previous = torch.zeros_like(work)
    for k in range(m):
        previous = (full[..., k] - p[..., 0] * previous) / one_minus
        forward[..., k] = previous
    following = torch.zeros_like(work)
    for k in range(m, 0, -1):
        following = (full[..., k] - (1.0 - p[..., 0]) * following) / p_safe
        backward[..., k - 1] = following
    result = torch.where(p <= 0.5, forward, backward).clamp(0.0, 1.0)
    return result.to(probs.dtype)


def count_marginals(probs: torch.Tensor) -> torch.Tensor:
    """P(y_j = 1, |y| = s) for independent labels, ``[..., M] -> [..., M, M+1]``."""
    rest = leave_one_out_size_distribution(probs)  # [..., M, M]: P(|y_-j| = s-1)
    return torch.nn.functional.pad(probs.unsqueeze(-1) * rest, (1, 0))


#: Polynomials up to this length are multiplied directly (exact sums); longer ones by FFT.
_DIRECT_LENGTH = 16


def _multiply_truncated(a: torch.Tensor, b: torch.Tensor, length: int) -> torch.Tensor:
    """Coefficients ``0 .. length-1`` of the products of polynomials ``a [..., da]`` and
    ``b [..., db]`` (broadcast over the leading dimensions)."""
    da, db = a.shape[-1], b.shape[-1]
    if min(da, db) <= _DIRECT_LENGTH:
        if da > db:
            a, b, da, db = b, a, db, da
        shape = torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])
        out = a.new_zeros(*shape, min(da + db - 1, length))
        for t in range(min(da, length)):
            width = min(db, length - t)
            out[..., t : t + width] += a[..., t : t + 1] * b[..., :width]
        return out
    n = da + db - 1
    product = torch.fft.irfft(torch.fft.rfft(a, n=n) * torch.fft.rfft(b, n=n), n=n)
    return product[..., :length].clamp_min(0.0)  # rounding can leave values of ~-1e-17


def truncated_size_distribution(probs: torch.Tensor, max_size: int) -> torch.Tensor:
    """P(sum_j y_j = s) for s = 0..``max_size`` only, independent ``y_j ~ Bernoulli(probs_j)``.

    ``[..., n] -> [..., max_size + 1]`` (zeros beyond n). The n factors ``(1 - p + p z)`` are
    multiplied pairwise in a balanced tree, each product truncated to degree ``max_size``:
    ``log2(n)`` vectorised steps, ``O(n max_size log)`` time and ``O(n)`` memory per row (no
    Python loop over labels). Short products are exact sums; long ones go through the FFT
    (absolute error about 1e-16 per coefficient, negative rounding clamped to 0).
    """
    work = probs.double()
    batch, n = work.shape[:-1], work.shape[-1]
    if n == 0:
        out = work.new_zeros(*batch, max_size + 1)
        out[..., 0] = 1.0
        return out
    polys = torch.stack([1.0 - work, work], -1)  # [..., n, 2]
    while polys.shape[-2] > 1:
        if polys.shape[-2] % 2:
            one = torch.zeros_like(polys[..., :1, :])
            one[..., 0] = 1.0
            polys = torch.cat([polys, one], -2)
        length = min(2 * polys.shape[-1] - 1, max_size + 1)
        polys = _multiply_truncated(polys[..., 0::2, :], polys[..., 1::2, :], length)
    out = polys[..., 0, :]
    return torch.nn.functional.pad(out, (0, max_size + 1 - out.shape[-1])).to(probs.dtype)


def shortlist_count_marginals(probs: torch.Tensor, shortlist: torch.Tensor, max_size: int):
    """P(y_j = 1, |y| = s) for the shortlisted labels j and s <= ``max_size``, where ``|y|``
    counts ALL labels, for independent labels; and the size distribution.

    Args:
        probs: ``[..., M]`` marginals.
        shortlist: ``[..., L]`` distinct label indices per row.
        max_size: the largest size ``S`` kept.

    Returns:
        ``(counts [..., L, S+1], sizes [..., S+1], size_tail [...])``: ``sizes`` is P(|y| = s),
        ``size_tail`` is P(|y| > S).

    ``|y| = |y_shortlist| + |y_outside|`` with the two parts independent: the outside labels'
    exact size distribution truncated at S (:func:`truncated_size_distribution`, no
    approximation: an outside part of many tiny probabilities is close to Poisson, but an
    exact truncated product costs no more) is convolved with the shortlist's leave-one-out
    distributions ``[..., L, L]``. Work ``O(M S log M + L^2 (L + S))``, memory ``O(M + L (L + S))``
    per row.
    """
    work = probs.double()
    shortlist = shortlist.expand(*work.shape[:-1], shortlist.shape[-1])
    inside = work.gather(-1, shortlist)  # [..., L]
    outside = truncated_size_distribution(work.scatter(-1, shortlist, 0.0), max_size)  # [..., S+1]
    rest = leave_one_out_size_distribution(inside).double()  # [..., L, L]: P(|y_S - j| = t)
    rest = _multiply_truncated(rest, outside.unsqueeze(-2), max_size)  # [..., L, <=S]: P(|y - j| = t)
    rest = torch.nn.functional.pad(rest, (0, max_size - rest.shape[-1]))
    counts = torch.nn.functional.pad(inside.unsqueeze(-1) * rest, (1, 0))
    sizes = _multiply_truncated(size_distribution(inside), outside, max_size + 1)
    sizes = torch.nn.functional.pad(sizes, (0, max_size + 1 - sizes.shape[-1]))
    tail = (1.0 - sizes.sum(-1)).clamp_min(0.0)
    return counts.to(probs.dtype), sizes.to(probs.dtype), tail.to(probs.dtype)
