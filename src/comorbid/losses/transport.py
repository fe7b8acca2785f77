r"""Entropic optimal-transport (Wasserstein) loss with a label cost matrix.

Frogner, Zhang, Mobahi, Araya-Polo & Poggio, "Learning with a Wasserstein Loss", NeurIPS 2015:
the prediction is a distribution over labels (a softmax, as in the paper), the target is the
normalised label set, and the loss is the entropy-regularised transport cost between them for a
ground cost ``C`` ``[M, M]`` between labels (e.g. a distance in the ICD tree), so that predicting a
sibling of the right code costs less than predicting an unrelated one.

Why hand-written rather than POT (``ot``): POT's batched solver (``ot.batch.solve_batch``) needs
a cost matrix per row, ``[B, M, M]`` (100 GB at B=256, M=10000), and its envelope gradient flows
to the cost matrix only, not to the marginals, which is what a loss needs; its per-problem
solvers (``ot.sinkhorn2``) take one source histogram per call, so a batch is a Python loop of
``B`` dense ``M x M`` solves. Here the target is supported on the row's positive labels only, so
each row's problem is ``M x P`` (``P`` = most positives in a row), solved for the whole batch at
once in the log domain (stable for small ``epsilon``), and differentiated by the envelope
theorem as in Frogner et al. (the gradient with respect to the prediction is the dual potential),
so no iterations are kept for backward. POT is the reference in the tests.
"""

from __future__ import annotations

from functools import partial

import torch

from comorbid.losses.base import Loss, LossInputs, Reduction, apply_loss

#: Rows are processed in chunks of at most this many ``[rows, P, M]`` elements (memory bound).
CHUNK_ELEMENTS = 2**24
#: Costs spanning at most this many ``epsilon`` use the exponentiated kernel (matrix products)
#: rather than log-sum-exps; exp(-50) is far from float32's underflow at exp(-87).
KERNEL_MAX_EXPONENT = 50.0
#: Convergence (largest change of the dual potential ``f``) is checked every this many iterations.
CHECK_EVERY = 10


def _check_cost_matrix(cost_matrix) -> torch.Tensor | None:
    if cost_matrix is None:
        return None
    cost_matrix = torch.as_tensor(cost_matrix)
    if cost_matrix.dim() != 2 or cost_matrix.shape[0] != cost_matrix.shape[1]:
        raise ValueError(f"Expected a square `cost_matrix` [M, M], got shape {list(cost_matrix.shape)}")
    if not cost_matrix.is_floating_point():
        cost_matrix = cost_matrix.to(torch.get_default_dtype())
    if not bool(torch.isfinite(cost_matrix).all()):
        raise ValueError("Expected a finite `cost_matrix`, got a non-finite entry")
    return cost_matrix


def _check_solver(epsilon, max_iter, tol):
    if epsilon <= 0:
        raise ValueError(f"Expected `epsilon` > 0, got {epsilon}")
    if max_iter < 1:
        raise ValueError(f"Expected `max_iter` >= 1, got {max_iter}")
    if tol < 0:
        raise ValueError(f"Expected `tol` >= 0, got {tol}")


def _sinkhorn_potentials(log_a, log_b, costs, epsilon, max_iter, tol):
    """Log-domain Sinkhorn for ``pi = a_i b_k exp((f_i + g_k - C_ik) / eps)``.

    Args:
        log_a: ``[R, M]`` log source masses (``-inf`` off the support).
        log_b: ``[R, P]`` log target masses (``-inf`` on padding).
        costs: ``[R, P, M]`` ``C[i, support_k]``.

    Returns:
        ``f`` ``[R, M]`` and ``g`` ``[R, P]``, ending with an ``f`` update so that the row
        marginals of ``pi`` equal ``a`` exactly.
    """
    lse_over_labels, lse_over_support = _log_sum_exps(costs, epsilon)
    # Below a few rounding errors of the potentials, iterations only churn rounding noise.
    noise = 16 * torch.finfo(log_a.dtype).eps
    f = torch.zeros_like(log_a)
    for iteration in range(max_iter):
        g = -epsilon * lse_over_labels(log_a + f / epsilon)
        f_new = -epsilon * lse_over_support(log_b + g / epsilon)
        if (iteration + 1) % CHECK_EVERY == 0:
            change, size = float((f_new - f).abs().max()), float(f_new.abs().max())
            if change <= max(tol, noise * max(1.0, size)):
                return f_new, g
        f = f_new
    return f, g


def _log_sum_exps(costs, epsilon):
    """``h [R, M] -> log sum_i exp(h_i - C_ik / eps)`` ``[R, P]`` and ``h [R, P] -> log sum_k
    exp(h_k - C_ik / eps)`` ``[R, M]``.

    When the costs span at most :data:`KERNEL_MAX_EXPONENT` units of ``epsilon``, the kernel
    ``exp(-(C - min C) / eps)`` is formed once and each sum is a batched matrix-vector product of
    ``exp(h - max h)`` with it (one pass over ``[R, P, M]``; every term of the largest ``h`` is at
    least ``exp(-KERNEL_MAX_EXPONENT)``, so nothing underflows to a zero sum). Otherwise each sum
    is a ``logsumexp`` over ``[R, P, M]`` (several passes, no range limit).
    """
    low = costs.amin()
    spread = float((costs.amax() - low) / epsilon)
    if spread > KERNEL_MAX_EXPONENT:
        scaled = -costs / epsilon
        return (
            lambda h: torch.logsumexp(scaled + h[:, None, :], dim=-1),
            lambda h: torch.logsumexp(scaled + h[:, :, None], dim=1),
        )
    kernel = torch.exp(-(costs - low) / epsilon)
    offset = low / epsilon

    def over_labels(h):
        peak = h.amax(-1, keepdim=True)
        return torch.log(torch.bmm(kernel, torch.exp(h - peak)[:, :, None]).squeeze(-1)) + peak - offset

    def over_support(h):
        peak = h.amax(-1, keepdim=True)
        return torch.log(torch.bmm(torch.exp(h - peak)[:, None, :], kernel).squeeze(1)) + peak - offset

    return over_labels, over_support


def _wasserstein_rows(
    inputs: LossInputs,
    cost_matrix: torch.Tensor | None,
    epsilon: float,
    max_iter: int,
    tol: float,
) -> torch.Tensor:
    s = inputs.logits
    batch, n_labels = s.shape
    dtype, device = s.dtype, s.device
    if cost_matrix is not None and cost_matrix.shape[0] != n_labels:
        raise ValueError(
            f"Expected `cost_matrix` of shape [M, M] = [{n_labels}, {n_labels}] for {n_labels} labels, "
            f"got {list(cost_matrix.shape)}"
        )
    keep = inputs.keep
    w = inputs.weight
    log_w = torch.zeros_like(s)
    if w is not None:
        keep = keep & (w > 0)
        log_w = torch.log(torch.where(w > 0, w, torch.ones_like(w)))
    positives = keep & (inputs.targets == 1)
    n_positives = positives.sum(-1)
    valid = n_positives > 0  # a row without (unmasked, weighted) positives has no target: loss 0
    support_size = int(n_positives.max()) if batch > 0 else 0
    if support_size == 0:
        return s.sum(-1) * 0.0
    # Prediction a = softmax over unmasked labels of s + log w; rows without a target get a
    # placeholder problem whose loss is zeroed below.
    scores = (s + log_w).masked_fill(~keep, float("-inf"))
    scores = torch.where(valid[:, None], scores, torch.zeros_like(s))
    log_a = torch.log_softmax(scores, dim=-1)
    # Target b on the row's positives, padded to P slots: positives first (stable order).
    support = torch.sort(positives.to(torch.int8), dim=-1, descending=True, stable=True).indices
    support = support[:, :support_size]
    slot = torch.arange(support_size, device=device)
    in_support = slot[None, :] < n_positives[:, None]
    in_support = in_support | (~valid[:, None] & (slot[None, :] == 0))
    target_mass = torch.where(in_support, torch.exp(log_w).gather(-1, support), torch.zeros((), dtype=dtype, device=device))
    target_mass = target_mass / target_mass.sum(-1, keepdim=True)
    log_b = torch.log(target_mass)  # -inf on padding

    f = torch.empty_like(s)
    g = torch.empty(batch, support_size, dtype=dtype, device=device)
    rows_per_chunk = max(1, CHUNK_ELEMENTS // (support_size * n_labels))
    with torch.no_grad():
        cost_t = None if cost_matrix is None else cost_matrix.to(device=device, dtype=dtype).T
        labels = torch.arange(n_labels, device=device)
        for start in range(0, batch, rows_per_chunk):
            rows = slice(start, start + rows_per_chunk)
            if cost_t is None:  # 0/1 cost without materialising [M, M]
                costs = (labels[None, None, :] != support[rows, :, None]).to(dtype)
            else:
                costs = cost_t[support[rows]]  # [R, P, M]: costs[r, k, i] = C[i, support_k]
            f[rows], g[rows] = _sinkhorn_potentials(
                log_a[rows].detach(), log_b[rows], costs, epsilon, max_iter, tol
            )
    # Envelope theorem: at the Sinkhorn fixed point the regularised cost is <f, a> + <g, b> and
    # its gradient with respect to a is f (Frogner et al. 2015, Algorithm 1).
    value = (torch.exp(log_a) * f).sum(-1) + (target_mass * g).sum(-1)
    return torch.where(valid, value, torch.zeros_like(value))


def wasserstein(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    *,
    cost_matrix: torch.Tensor | None = None,
    epsilon: float = 0.1,
    max_iter: int = 200,
    tol: float = 1e-6,
    validate_args: bool = True,
) -> torch.Tensor:
    r"""Entropic Wasserstein loss between ``softmax(s)`` and the normalised target (Frogner et al.,
    NeurIPS 2015).

    .. math::
        a_b = \operatorname{softmax}(s_b + \log w_b),\quad b_b = \frac{w_b \odot y_b}{\langle w_b, y_b\rangle},\quad
        \ell_b = \min_{\pi \in U(a_b, b_b)} \langle \pi, C\rangle + \epsilon\,\mathrm{KL}(\pi \,\|\, a_b b_b^\top)

    over the unmasked labels of row ``b``, solved by log-domain Sinkhorn (Cuturi, NeurIPS 2013)
    until the dual potential changes by at most ``tol`` (checked every 10 iterations) or
    ``max_iter`` iterations. The gradient is the envelope gradient ``d loss / d a = f`` (the dual
    potential), exact at convergence; no gradient flows to ``cost_matrix``.

    Costs O(B M P) memory and time per iteration, ``P`` the largest number of positives in a row
    (the target lives on the positives only). With ``epsilon > 0`` the loss is not 0 at
    ``a = b`` (the entropic bias); it decreases to the unregularised Wasserstein distance as
    ``epsilon -> 0``, which needs more iterations. ``epsilon`` is in the units of the costs:
    scale the cost matrix to about ``[0, 1]`` for the default.

    Edge cases: a row without an unmasked positive (of positive weight) has no target
    distribution and contributes 0 (it still counts in ``"mean"`` if it has unmasked labels).
    Logits of 1e4 give a one-hot prediction and a finite loss and gradient.

    Args:
        logits, targets, mask: as for :func:`comorbid.losses.bce`.
        weight: broadcastable to ``[B, M]``; multiplies each label's mass before normalising
            (in both the prediction and the target).
        reduction: ``"none"`` (``[B]``) | ``"mean"`` (over rows with an unmasked label) | ``"sum"``.
        cost_matrix: ``[M, M]`` ground cost ``C[i, j]`` of moving mass from label ``i`` to ``j``;
            ``None`` is the 0/1 cost (``1 - I``, never materialised), for which the
            unregularised distance is the total variation ``1 - sum_j min(a_j, b_j)``.
        epsilon: entropic regularisation ``> 0`` (cost units).
        max_iter: most Sinkhorn iterations.
        tol: stopping threshold on the change of the potential ``f`` (cost units), floored at
            16 rounding errors of the potentials (``16 eps max(1, |f|)``), below which the
            iteration cannot make progress.
    """
    _check_solver(epsilon, max_iter, tol)
    compute = partial(_wasserstein_rows, cost_matrix=_check_cost_matrix(cost_matrix), epsilon=epsilon,
                      max_iter=max_iter, tol=tol)
    return apply_loss(compute, logits, targets, weight, mask, reduction, "rows", validate_args=validate_args)


class WassersteinLoss(Loss):
    """Module twin of :func:`wasserstein`; the cost matrix is a buffer (moves with ``.to()``)."""

    name = "wasserstein"
    reduces_over = "rows"
    label_tensors = {"weight": 1, "cost_matrix": 2}

    def __init__(self, weight=None, reduction: Reduction = "mean", *, cost_matrix=None, epsilon: float = 0.1,
                 max_iter: int = 200, tol: float = 1e-6, validate_args=True):
        super().__init__(weight, reduction, validate_args=validate_args)
        _check_solver(epsilon, max_iter, tol)
        self.register_buffer("cost_matrix", _check_cost_matrix(cost_matrix))
        self.epsilon, self.max_iter, self.tol = epsilon, max_iter, tol

    def hyperparameters(self) -> dict:
        return {"cost_matrix": self.cost_matrix, "epsilon": self.epsilon, "max_iter": self.max_iter, "tol": self.tol}

    def compute(self, inputs: LossInputs) -> torch.Tensor:
        return _wasserstein_rows(inputs, self.cost_matrix, self.epsilon, self.max_iter, self.tol)
