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


def _nodes(n: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre nodes ``t`` and weights ``w`` on [0, 1], ``[n]`` each."""
    x, w = np.polynomial.legendre.leggauss(n)
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
        log_tail = torch.zeros(head.shape[0], len(t), dtype=dtype, device=probs.device)
        for lo in range(size, m, LABEL_CHUNK):  # labels that are never predicted
            tail = sorted_probs[:, lo : lo + LABEL_CHUNK]
            log_tail += torch.log1p(-tail[:, :, None] * (1.0 - t)).sum(1)
        if metric == "jaccard":
            # log prod_{i>k} f_i: reverse cumulative sum over the shortlist, plus the tail
            suffix = log_f_head.flip(1).cumsum(1).flip(1)  # [b', K, Q]: sum_{i>=k}
            after = torch.cat([suffix[:, 1:], torch.zeros_like(suffix[:, :1])], 1) + log_tail[:, None, :]
            integrand = torch.exp((k[:, None] - 1.0) * log_t + after)  # [b', K, Q]
            values[rows, 1:] = head.cumsum(1) * (integrand @ w)
        else:
            log_all = log_f_head.sum(1) + log_tail  # [b', Q]: log prod_i f_i(t)
            ratio = (head[:, :, None] / torch.exp(log_f_head)).cumsum(1)  # [b', K, Q]: sum_{i<=k} p_i/f_i
            integrand = torch.exp(k[:, None] * log_t + log_all[:, None, :]) * ratio
            values[rows, 1:] = 2.0 * (integrand @ w)
    return values.to(marginals.dtype), order


def best_top_k_set(marginals: torch.Tensor, metric: str, max_size: int = DEFAULT_MAX_SIZE,
                   max_nodes: int = DEFAULT_MAX_NODES) -> torch.Tensor:
    """The top-k set of largest expected ``metric`` (the smallest such ``k`` on ties), ``[B, M]``."""
    values, order = expected_utility_of_top_k(marginals, metric, max_size, max_nodes)
    best_k = values.argmax(1)  # first maximum: the smallest k
    take = torch.arange(marginals.shape[1], device=order.device)[None, :] < best_k[:, None]
    out = torch.zeros(marginals.shape, dtype=torch.get_default_dtype(), device=marginals.device)
    return out.scatter_(1, order, take.to(out.dtype))
