r"""Smooth set-metric surrogates: sigmoidF1 and soft Jaccard, one value per row.

Both replace the 0/1 predictions in the count of true positives, false positives and false
negatives by ``S = sigmoid(beta * (s + eta))`` (Bénédict, Koops, Odijk & de Rijke, "sigmoidF1: A
Smooth F1 Score Surrogate Loss for Multilabel Classification", arXiv:2108.10566, 2021):

.. math::
    tp_b = \sum_j w_j S_j y_j,\quad fp_b = \sum_j w_j S_j (1 - y_j),\quad fn_b = \sum_j w_j (1 - S_j) y_j

over the unmasked labels of row ``b``. The paper sums over the batch per label and averages F1
over labels (macro); here, as every loss in this package, the surrogate is per row (the
"samples" average of the example-based F1 / Jaccard), so ``reduction="none"`` gives ``[B]`` and
``"mean"`` averages over rows with at least one unmasked label.

Edge cases (``smooth = 0``): a row without positives has ``tp = 0``, so its F1 and Jaccard are 0
and its loss is 1 whatever the scores, with zero gradient; where ``tp + fp + fn`` is exactly 0
(no positives and all ``S`` rounded to 0) the same value 1 is used. ``smooth > 0`` (additive
smoothing, ``(2tp + c) / (2tp + fp + fn + c)``) makes empty rows informative instead: their loss
is ``fp / (fp + c)``.
"""

from __future__ import annotations

from functools import partial

import torch

from comorbid.losses.base import Loss, LossInputs, Reduction, apply_loss


def _soft_counts(inputs: LossInputs, beta: float, eta: float):
    z = beta * (inputs.logits + eta)
    predicted, not_predicted = torch.sigmoid(z), torch.sigmoid(-z)  # 1 - S without cancellation
    w = inputs.weight_or_ones()
    if inputs.mask is not None:
        w = torch.where(inputs.mask, w, torch.zeros_like(w))
    y = inputs.targets
    tp = (w * predicted * y).sum(-1)
    fp = (w * predicted * (1 - y)).sum(-1)
    fn = (w * not_predicted * y).sum(-1)
    return tp, fp, fn


def _ratio_loss(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    positive = denominator > 0
    safe = torch.where(positive, denominator, torch.ones_like(denominator))
    return torch.where(positive, 1 - numerator / safe, torch.ones_like(denominator))


def _sigmoid_f1_rows(inputs: LossInputs, beta: float, eta: float, smooth: float) -> torch.Tensor:
    tp, fp, fn = _soft_counts(inputs, beta, eta)
    return _ratio_loss(2 * tp + smooth, 2 * tp + fp + fn + smooth)


def _soft_jaccard_rows(inputs: LossInputs, beta: float, eta: float, smooth: float) -> torch.Tensor:
    tp, fp, fn = _soft_counts(inputs, beta, eta)
    return _ratio_loss(tp + smooth, tp + fp + fn + smooth)


def _check(beta, smooth):
    if beta <= 0:
        raise ValueError(f"Expected `beta` > 0, got {beta}")
    if smooth < 0:
        raise ValueError(f"Expected `smooth` >= 0, got {smooth}")


def sigmoid_f1(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    *,
    beta: float = 1.0,
    eta: float = 0.0,
    smooth: float = 0.0,
    validate_args: bool = True,
) -> torch.Tensor:
    r"""sigmoidF1 (Bénédict et al., arXiv:2108.10566, 2021), per row: ``1 - soft F1``.

    .. math::
        \ell_b = 1 - \frac{2\,tp_b + c}{2\,tp_b + fp_b + fn_b + c}

    Defaults ``beta=1, eta=0`` (the paper's code's ``S=-1, E=0``: a plain sigmoid), ``c=0``.

    Args:
        logits, targets, weight, mask: as for :func:`comorbid.losses.bce`; ``weight`` multiplies
            each label's contribution to the counts.
        reduction: ``"none"`` (``[B]``) | ``"mean"`` (over rows with an unmasked label) | ``"sum"``.
        beta: sigmoid slope ``> 0``.
        eta: sigmoid offset.
        smooth: additive smoothing ``c >= 0``.
    """
    _check(beta, smooth)
    compute = partial(_sigmoid_f1_rows, beta=beta, eta=eta, smooth=smooth)
    return apply_loss(compute, logits, targets, weight, mask, reduction, "rows", validate_args=validate_args)


def soft_jaccard(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    *,
    beta: float = 1.0,
    eta: float = 0.0,
    smooth: float = 0.0,
    validate_args: bool = True,
) -> torch.Tensor:
    r"""Soft Jaccard loss per row, ``1 - soft IoU`` with the sigmoidF1 soft counts (Bénédict et
    al., arXiv:2108.10566, 2021; the soft IoU is Rahman & Wang, "Optimizing Intersection-Over-Union
    in Deep Neural Networks for Image Segmentation", ISVC 2016).

    .. math::
        \ell_b = 1 - \frac{tp_b + c}{tp_b + fp_b + fn_b + c}

    Args:
        As for :func:`sigmoid_f1`.
    """
    _check(beta, smooth)
    compute = partial(_soft_jaccard_rows, beta=beta, eta=eta, smooth=smooth)
    return apply_loss(compute, logits, targets, weight, mask, reduction, "rows", validate_args=validate_args)


class _SurrogateLoss(Loss):
    reduces_over = "rows"

    def __init__(self, weight=None, reduction: Reduction = "mean", *, beta: float = 1.0, eta: float = 0.0,
                 smooth: float = 0.0, validate_args=True):
        super().__init__(weight, reduction, validate_args=validate_args)
        _check(beta, smooth)
        self.beta, self.eta, self.smooth = beta, eta, smooth

    def hyperparameters(self) -> dict:
        return {"beta": self.beta, "eta": self.eta, "smooth": self.smooth}


class SigmoidF1Loss(_SurrogateLoss):
    """Module twin of :func:`sigmoid_f1`."""

    name = "sigmoid_f1"

    def compute(self, inputs: LossInputs) -> torch.Tensor:
        return _sigmoid_f1_rows(inputs, self.beta, self.eta, self.smooth)


class SoftJaccardLoss(_SurrogateLoss):
    """Module twin of :func:`soft_jaccard`."""

    name = "soft_jaccard"

    def compute(self, inputs: LossInputs) -> torch.Tensor:
        return _soft_jaccard_rows(inputs, self.beta, self.eta, self.smooth)

