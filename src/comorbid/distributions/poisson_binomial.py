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
