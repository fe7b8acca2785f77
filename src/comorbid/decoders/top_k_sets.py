"""Exact Jaccard and F1 decoding for independent labels: the best set is a top-k set.

**Why a top-k set.** Let ``u(h, y)`` depend only on ``a = |h & y|``, ``|y|`` and ``|h|``, and
be non-decreasing in ``a`` when the other two are fixed (instance F1 ``2a / (|h| + |y|)`` and
Jaccard ``a / (|h| + |y| - a)`` are). Under independent labels, take ``i`` in ``h`` and ``j``
outside with ``p_j >= p_i``, and swap them. Conditioned on the other labels, the two sets score
the same unless exactly one of ``y_i, y_j`` is 1, and
``E[u(h - i + j)] - E[u(h)] = (P(y_j=1, y_i=0) - P(y_i=1, y_j=0)) * D = (p_j - p_i) * D``
with ``D >= 0`` the expected gain of one more true positive. So among sets of size ``k`` the
``k`` labels with the largest marginals are optimal, and only ``M + 1`` sets need scoring. This
is the exchange argument of Lewis (1995, SIGIR, "Evaluating and optimizing autonomous text
classification systems") for the F-measure, proven there and in Waegeman, Dembczynski, Jachnik,
Cheng & Huellermeier (2014, JMLR 15, "On the Bayes-optimality of F-measure maximizers",
Theorem 4, independence case); it carries over verbatim to Jaccard. Tests check it against
brute force over all ``2^M`` sets.

**Scoring a top-k set.** With the marginals sorted, ``p_1 >= ... >= p_M``, let
``a = sum_{i<=k} y_i`` and ``r = sum_{i>k} y_i`` (independent under the model) and
``f_i(t) = 1 - p_i + p_i t``. Writing ``1/n = int_0^1 t^(n-1) dt`` (the generating-function
form of negative moments, Chao & Strawderman, 1972, JASA 67) gives, for ``k >= 1``::

    E[J_k]  = (sum_{i<=k} p_i) * int_0^1 t^(k-1) prod_{i>k} f_i(t) dt
    E[F1_k] = 2 int_0^1 t^k prod_i f_i(t) * sum_{i<=k} p_i / f_i(t) dt

and ``E[J_0] = E[F1_0] = P(y = 0) = prod_i (1 - p_i)``. Both integrands are polynomials, of
degree ``M - 1`` (Jaccard) and at most ``2M - 1`` (F1), so Gauss-Legendre quadrature with
``ceil(M/2)`` and ``M`` nodes is exact (Golub & Welsch, 1969). Products are taken in log
space. Work: ``O(M Q)`` per row for ``Q`` nodes, no ``M x M`` tables, so with the node count
capped (``max_nodes``) and the set size capped (``max_size``, the shortlist of labels that
may be predicted) it runs on 10^4 labels; it is exact while ``M <= max_size`` and the node
count suffices, and a quadrature of a smooth integrand otherwise.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

#: Sets larger than this are not considered (the shortlist), and at most this many nodes.
DEFAULT_MAX_SIZE = 256
DEFAULT_MAX_NODES = 256
#: Rows processed together (bounds the ``[rows, max_size, nodes]`` work tensor).
ROW_CHUNK = 32
#: Labels beyond the shortlist are summed in chunks of this many (bounds ``[rows, chunk, nodes]``).
LABEL_CHUNK = 1024


@functools.lru_cache(maxsize=64)
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def _nodes(n: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre nodes ``t`` and weights ``w`` on [0, 1], ``[n]`` each."""
    x, w = _legendre(n)
    return (torch.as_tensor((x + 1) / 2, dtype=dtype, device=device), torch.as_tensor(w / 2, dtype=dtype, device=device))


def node_count(metric: str, n_labels: int) -> int:
    """Nodes that make the quadrature exact for ``n_labels`` labels."""
    return max(1, math.ceil(n_labels / 2)) if metric == "jaccard" else max(1, n_labels)


def is_exact(metric: str, n_labels: int, max_size: int = DEFAULT_MAX_SIZE, max_nodes: int = DEFAULT_MAX_NODES) -> bool:
    return n_labels <= max_size and node_count(metric, n_labels) <= max_nodes


def expected_utility_of_top_k(
    marginals: torch.Tensor, metric: str, max_size: int = DEFAULT_MAX_SIZE, max_nodes: int = DEFAULT_MAX_NODES
) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected Jaccard or instance F1 of the ``k`` most probable labels, independent labels.

    Args:
        marginals: ``[B, M]`` independent label probabilities.
        metric: ``"jaccard"`` or ``"instance-f1"``.
        max_size: largest ``k`` scored (a shortlist of the ``max_size`` most probable labels).
        max_nodes: most quadrature nodes; exact when :func:`node_count` is within it.

    Returns:
        ``values [B, K + 1]`` (``values[:, k]`` the expected utility of the top-k set,
        ``K = min(M, max_size)``) and ``order [B, M]`` (labels by decreasing marginal, ties to
        the lower index).
    """
    if metric not in ("jaccard", "instance-f1"):
        raise ValueError(f"Expected metric 'jaccard' or 'instance-f1', got {metric!r}")
    b, m = marginals.shape
    dtype = marginals.dtype if marginals.dtype == torch.float64 else torch.float64
    probs = marginals.detach().to(dtype).clamp(0.0, 1.0)
    order = probs.argsort(dim=1, descending=True, stable=True)
    size = min(m, max_size)
    values = probs.new_empty(b, size + 1)
    values[:, 0] = torch.log1p(-probs).sum(1).exp()  # P(y = 0); log1p(-1) = -inf gives 0
    if size == 0:
        return values.to(marginals.dtype), order
    t, w = _nodes(min(node_count(metric, m), max_nodes), dtype, probs.device)
    log_t = t.log()
    k = torch.arange(1, size + 1, dtype=dtype, device=probs.device)
    for start in range(0, b, ROW_CHUNK):
        rows = slice(start, start + ROW_CHUNK)
        sorted_probs = probs[rows].gather(1, order[rows])  # [b', M]
        head = sorted_probs[:, :size]
        log_f_head = torch.log1p(-head[:, :, None] * (1.0 - t))  # [b', K, Q]: log f_i(t)
        log_tail = _log_tail_product(sorted_probs[:, size:], t)  # labels that are never predicted
        if metric == "jaccard":
            # log prod_{i>k} f_i: reverse cumulative sum over the shortlist, plus the tail
            # sum_{k<i<=K} = total - sum_{i<=k}: one cumulative sum (terms are <= 0, so the
            # difference loses at most ~1e-16 of the total's magnitude, in log space)
            after = log_f_head.sum(1, keepdim=True) - log_f_head.cumsum(1) + log_tail[:, None, :]
            integrand = torch.exp((k[:, None] - 1.0) * log_t + after)  # [b', K, Q]
            values[rows, 1:] = head.cumsum(1) * (integrand @ w)
        else:
            log_all = log_f_head.sum(1) + log_tail  # [b', Q]: log prod_i f_i(t)
            ratio = (head[:, :, None] / torch.exp(log_f_head)).cumsum(1)  # [b', K, Q]: sum_{i<=k} p_i/f_i
            integrand = torch.exp(k[:, None] * log_t + log_all[:, None, :]) * ratio
            values[rows, 1:] = 2.0 * (integrand @ w)
    return values.to(marginals.dtype), order


def _log_tail_product(tail: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``sum_i log(1 - p_i (1 - t))`` over the labels ``tail [b', n]`` at the nodes ``t [Q]``, ``[b', Q]``.

    Labels with ``p <= 1/4`` (nearly all of them when there are many) go through the power
    series ``log(1 - p u) = -sum_n (p u)^n / n``: with the power sums ``S_n = sum_i p_i^n``
    it costs ``O(n T + T Q)`` instead of ``O(n Q)``, ``T`` terms until ``S_1 p_max^T`` is below
    ``1e-17``. The few larger ones are summed directly.
    """
    out = torch.zeros(tail.shape[0], len(t), dtype=tail.dtype, device=tail.device)
    if tail.shape[1] == 0:
        return out
    small = tail <= 0.25
    large = torch.where(small, torch.zeros_like(tail), tail)
    keep = large.gt(0).any(0)
    if keep.any():
        for lo in range(0, int(keep.sum()), LABEL_CHUNK):
            chunk = large[:, keep][:, lo : lo + LABEL_CHUNK]
            out += torch.log1p(-chunk[:, :, None] * (1.0 - t)).sum(1)
    tail = torch.where(small, tail, torch.zeros_like(tail))
    p_max, s_1 = tail.max().item(), tail.sum(1).max().item()
    if p_max <= 0:
        return out
    terms = 1 if p_max < 1e-300 else min(200, max(1, math.ceil(math.log(1e-17 / max(s_1, 1e-300)) / math.log(p_max))))
    u = 1.0 - t
    power, u_power = tail.clone(), u.clone()
    for n in range(1, terms + 1):
        out -= power.sum(1, keepdim=True) * (u_power / n)
        power *= tail
        u_power = u_power * u
    return out


def best_top_k_set(marginals: torch.Tensor, metric: str, max_size: int = DEFAULT_MAX_SIZE,
                   max_nodes: int = DEFAULT_MAX_NODES) -> torch.Tensor:
    """The top-k set of largest expected ``metric`` (the smallest such ``k`` on ties), ``[B, M]``."""
    return best_top_k_set_with_info(marginals, metric, max_size, max_nodes)[0]


def best_top_k_set_with_info(marginals: torch.Tensor, metric: str, max_size: int = DEFAULT_MAX_SIZE,
                             max_nodes: int = DEFAULT_MAX_NODES, nonempty: bool = False):
    """:func:`best_top_k_set` and, when ``M > max_size``, a
    :class:`~comorbid.decoders.f_measure.ShortlistInfo` (else None). ``nonempty``: the best
    top-k set with k >= 1.

    The loss bound: with ``K = max_size`` and ``m_out`` the marginal mass outside the top K,
    a top-k set with k > K contains the top K, and its extra labels add at most
    ``a_out / K`` to the Jaccard index and ``2 a_out / (K + 2)`` to F1 (``a_out`` of them
    true), so ``E[u_k] <= E[u_K] + m_out / K`` (Jaccard) or ``+ 2 m_out / (K + 2)`` (F1).
    It is stated for the quadrature's values, exact only while the node count suffices.
    """
    from comorbid.decoders.f_measure import EXACT_TOLERANCE, ShortlistInfo

    values, order = expected_utility_of_top_k(marginals, metric, max_size, max_nodes)
    if nonempty and values.shape[1] > 1:
        values[:, 0] = -torch.inf
    best_k = values.argmax(1)  # first maximum: the smallest k
    m = marginals.shape[1]
    take = torch.arange(m, device=order.device)[None, :] < best_k[:, None]
    out = torch.zeros(marginals.shape, dtype=torch.get_default_dtype(), device=marginals.device)
    out = out.scatter_(1, order, take.to(out.dtype))
    if m <= max_size:
        return out, None
    size = values.shape[1] - 1
    work = values.double()
    outside = marginals.double().scatter(1, order[:, :size], 0.0).sum(-1)
    extra = outside / size if metric == "jaccard" else 2.0 * outside / (size + 2.0)
    loss_bound = (torch.maximum(work.max(1).values, work[:, -1] + extra) - work.gather(1, best_k[:, None])[:, 0]).clamp_min(0.0)
    exact = (loss_bound <= EXACT_TOLERANCE) & (node_count(metric, m) <= max_nodes)
    info = ShortlistInfo(order[:, :size], outside.to(marginals.dtype), torch.zeros_like(outside).to(marginals.dtype),
                         loss_bound.to(marginals.dtype), exact)
    return out, info
