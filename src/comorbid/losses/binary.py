"""Decomposable losses: a sum of independent per-label terms (bce, focal, asymmetric).

Each returns ``[B, M]`` with ``reduction="none"``; ``"mean"`` averages over unmasked elements
(``B * M`` without a mask, exactly as :class:`torch.nn.BCEWithLogitsLoss`). ``weight`` multiplies
each element's loss. All three are computed from ``logsigmoid`` so that logits of +-1e4 give
finite values and gradients.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F

from comorbid.losses.base import Loss, LossInputs, Reduction, apply_loss


# ---------------------------------------------------------------------------------- bce
def _bce_elements(inputs: LossInputs, pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    if pos_weight is not None:
        pos_weight = torch.as_tensor(pos_weight, device=inputs.logits.device).to(inputs.logits.dtype)
    return F.binary_cross_entropy_with_logits(
        inputs.logits, inputs.targets, weight=inputs.weight, pos_weight=pos_weight, reduction="none"
    )


def bce(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    *,
    pos_weight: torch.Tensor | None = None,
    validate_args: bool = True,
) -> torch.Tensor:
    r"""Binary cross-entropy on logits, the independent-labels baseline.

    .. math::
        \ell_{bj} = -w_{bj}\,[\,p_j\, y_{bj} \log\sigma(s_{bj}) + (1 - y_{bj}) \log(1 - \sigma(s_{bj}))\,]

    with ``p_j = pos_weight[j]`` (1 by default). Equal to
    :func:`torch.nn.functional.binary_cross_entropy_with_logits` for every reduction, ``weight``
    and ``pos_weight`` when no mask is given.

    Args:
        logits: ``[B, M]``.
        targets: ``[B, M]`` 0/1 (bool, integer or float).
        weight: broadcastable to ``[B, M]``, multiplies each element's loss.
        mask: ``[B, M]`` bool, ``True`` where the label takes part.
        reduction: ``"none"`` (``[B, M]``) | ``"mean"`` (over unmasked elements) | ``"sum"``.
        pos_weight: broadcastable to ``[B, M]`` (usually ``[M]``), weight of the positive term.

    Returns:
        The loss, reduced as asked.

    Example:
        >>> import torch
        >>> from comorbid.losses import bce
        >>> logits, targets = torch.tensor([[2.0, -1.0]]), torch.tensor([[1, 0]])
        >>> round(bce(logits, targets).item(), 4)
        0.2201
    """
    compute = partial(_bce_elements, pos_weight=pos_weight)
    return apply_loss(
        compute, logits, targets, weight, mask, reduction, "elements",
        validate_args=validate_args, pos_weight=pos_weight,
    )


class BCELoss(Loss):
    """Module twin of :func:`bce` (signature of :class:`torch.nn.BCEWithLogitsLoss`).

    Args:
        weight: ``[M]`` or broadcastable to ``[B, M]``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        pos_weight: ``[M]`` or broadcastable to ``[B, M]``.
    """

    name = "bce"
    decomposable = True
    reduces_over = "elements"
    label_tensors = {"weight": 1, "pos_weight": 1}

    def __init__(self, weight=None, reduction: Reduction = "mean", *, pos_weight=None, validate_args=True):
        super().__init__(weight, reduction, validate_args=validate_args)
        self.register_buffer("pos_weight", None if pos_weight is None else torch.as_tensor(pos_weight))

    def hyperparameters(self) -> dict:
        return {"pos_weight": self.pos_weight}

    def _extra_inputs(self) -> dict:
        return {"pos_weight": self.pos_weight}

    def compute(self, inputs: LossInputs) -> torch.Tensor:
        return _bce_elements(inputs, self.pos_weight)


# ---------------------------------------------------------------------------------- focal
def _focal_elements(inputs: LossInputs, alpha: float | None, gamma: float) -> torch.Tensor:
    # z = s for positives, -s for negatives: the "correct-class" logit, so p_t = sigmoid(z).
    signed = torch.where(inputs.targets == 1, inputs.logits, -inputs.logits)
    ce = -F.logsigmoid(signed)
    # (1 - p_t)^gamma = exp(gamma * log sigmoid(-z)): finite with finite gradients even where
    # 1 - p_t rounds to 0 (logits of 1e4) and for gamma < 1, unlike pow(1 - p_t, gamma).
    loss = ce * torch.exp(gamma * F.logsigmoid(-signed)) if gamma != 0 else ce
    if alpha is not None and alpha >= 0:
        loss = torch.where(inputs.targets == 1, alpha * loss, (1 - alpha) * loss)
    if inputs.weight is not None:
        loss = loss * inputs.weight
    return loss


def focal(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    validate_args: bool = True,
) -> torch.Tensor:
    r"""Focal loss (Lin, Goyal, Girshick, He & Dollár, "Focal Loss for Dense Object Detection",
    ICCV 2017), per label with a sigmoid, as :func:`torchvision.ops.sigmoid_focal_loss`.

    .. math::
        \ell_{bj} = -w_{bj}\, \alpha_t (1 - p_t)^\gamma \log p_t,\qquad
        p_t = \begin{cases}\sigma(s) & y = 1\\ 1 - \sigma(s) & y = 0\end{cases},\quad
        \alpha_t = \begin{cases}\alpha & y = 1\\ 1 - \alpha & y = 0\end{cases}

    Defaults ``alpha=0.25, gamma=2`` are torchvision's; ``alpha=None`` (or negative, as in
    torchvision) drops the ``alpha_t`` factor. ``gamma=0, alpha=None`` is :func:`bce`.

    Args:
        logits, targets, weight, mask, reduction: as for :func:`bce`.
        alpha: weight of the positive class in ``[0, 1]``, or ``None``.
        gamma: focusing parameter ``>= 0``.
    """
    _check_focal(alpha, gamma)
    compute = partial(_focal_elements, alpha=alpha, gamma=gamma)
    return apply_loss(compute, logits, targets, weight, mask, reduction, "elements", validate_args=validate_args)


def _check_focal(alpha, gamma):
    if alpha is not None and alpha > 1:
        raise ValueError(f"Expected `alpha` in [0, 1] (or None / negative to disable), got {alpha}")
    if gamma < 0:
        raise ValueError(f"Expected `gamma` >= 0, got {gamma}")


class FocalLoss(Loss):
    """Module twin of :func:`focal`."""

    name = "focal"
    decomposable = True
    reduces_over = "elements"

    def __init__(self, weight=None, reduction: Reduction = "mean", *, alpha: float | None = 0.25,
                 gamma: float = 2.0, validate_args=True):
        super().__init__(weight, reduction, validate_args=validate_args)
        _check_focal(alpha, gamma)
        self.alpha, self.gamma = alpha, gamma

    def hyperparameters(self) -> dict:
        return {"alpha": self.alpha, "gamma": self.gamma}

    def compute(self, inputs: LossInputs) -> torch.Tensor:
        return _focal_elements(inputs, self.alpha, self.gamma)


# ---------------------------------------------------------------------------------- asymmetric
def _asymmetric_elements(inputs: LossInputs, gamma_pos: float, gamma_neg: float, clip: float) -> torch.Tensor:
    s = inputs.logits
    # Positive term: (1 - p)^gamma_pos * log p, both from logsigmoid (stable at |s| = 1e4).
    log_p = F.logsigmoid(s)
    positive = log_p * torch.exp(gamma_pos * F.logsigmoid(-s)) if gamma_pos != 0 else log_p
    # Negative term with the shifted probability p_m = max(p - clip, 0):
    # p_m^gamma_neg * log(1 - p_m), and 1 - p_m = min(sigmoid(-s) + clip, 1).
    if clip > 0:
        log_one_minus = torch.log(torch.clamp(torch.sigmoid(-s) + clip, max=1.0))
        shifted = torch.sigmoid(s) - clip
        above = shifted > 0
        # where() with a safe base: pow(0, gamma) has an infinite derivative for gamma < 1.
        safe = torch.where(above, shifted, torch.ones_like(shifted))
        focus = torch.where(above, safe**gamma_neg, torch.zeros_like(shifted))
    else:
        log_one_minus = F.logsigmoid(-s)
        focus = torch.exp(gamma_neg * F.logsigmoid(s))
    negative = log_one_minus * focus if gamma_neg != 0 else log_one_minus
    loss = -torch.where(inputs.targets == 1, positive, negative)
    if inputs.weight is not None:
        loss = loss * inputs.weight
    return loss


def asymmetric(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    validate_args: bool = True,
) -> torch.Tensor:
    r"""Asymmetric loss, ASL (Ridnik, Ben-Baruch, Zamir, Noy, Friedman, Protter & Zelnik-Manor,
    "Asymmetric Loss For Multi-Label Classification", ICCV 2021).

    .. math::
        \ell_{bj} = -w_{bj}\begin{cases} (1-p)^{\gamma_+} \log p & y = 1\\
                                       p_m^{\gamma_-} \log(1 - p_m) & y = 0\end{cases},\qquad
        p = \sigma(s),\; p_m = \max(p - m, 0)

    Defaults ``gamma_pos=0, gamma_neg=4, clip=0.05`` are the paper's recommended setting (the
    official training script's). Unlike the official code we do not clamp ``log p`` at
    ``log(1e-8)`` (it is computed as ``logsigmoid``), and the focusing weight is not detached;
    values agree where ``p > 1e-8``.

    Args:
        logits, targets, weight, mask, reduction: as for :func:`bce`.
        gamma_pos, gamma_neg: focusing exponents ``>= 0``.
        clip: probability margin ``m`` in ``[0, 1)``.
    """
    _check_asymmetric(gamma_pos, gamma_neg, clip)
    compute = partial(_asymmetric_elements, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip)
    return apply_loss(compute, logits, targets, weight, mask, reduction, "elements", validate_args=validate_args)


def _check_asymmetric(gamma_pos, gamma_neg, clip):
    if gamma_pos < 0 or gamma_neg < 0:
        raise ValueError(f"Expected `gamma_pos`, `gamma_neg` >= 0, got {gamma_pos}, {gamma_neg}")
    if not 0 <= clip < 1:
        raise ValueError(f"Expected `clip` in [0, 1), got {clip}")


class AsymmetricLoss(Loss):
    """Module twin of :func:`asymmetric`."""

    name = "asymmetric"
    decomposable = True
    reduces_over = "elements"

    def __init__(self, weight=None, reduction: Reduction = "mean", *, gamma_pos: float = 0.0,
                 gamma_neg: float = 4.0, clip: float = 0.05, validate_args=True):
        super().__init__(weight, reduction, validate_args=validate_args)
        _check_asymmetric(gamma_pos, gamma_neg, clip)
        self.gamma_pos, self.gamma_neg, self.clip = gamma_pos, gamma_neg, clip

    def hyperparameters(self) -> dict:
        return {"gamma_pos": self.gamma_pos, "gamma_neg": self.gamma_neg, "clip": self.clip}

    def compute(self, inputs: LossInputs) -> torch.Tensor:
        return _asymmetric_elements(inputs, self.gamma_pos, self.gamma_neg, self.clip)
