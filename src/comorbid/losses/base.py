"""The template every loss follows: validate -> compute per-element or per-row loss -> reduce.

A loss takes ``logits`` ``[B, M]`` and 0/1 ``targets`` ``[B, M]`` like
:class:`torch.nn.BCEWithLogitsLoss`, plus two optional tensors:

* ``weight``, non-negative, broadcastable to ``[B, M]``: a per-label (or per-element) rescaling.
  How it enters each loss is stated in the loss's docstring (a factor on each element for the
  decomposable losses, a factor ``w_p w_n`` on each (positive, negative) pair for the pairwise
  ones, a factor on each label's mass for the Wasserstein loss).
* ``mask``, bool, broadcastable to ``[B, M]``: ``True`` where a label takes part. A label with
  ``mask == False`` takes no part in the loss at all (neither as a positive nor as a negative),
  as if it had been deleted from that row; its logit gets a zero gradient.

The per-element losses (``reduces_over == "elements"``) return ``[B, M]`` with
``reduction="none"`` (zero at masked labels) and ``"mean"`` divides the sum by the number of
unmasked elements (``B * M`` without a mask, as torch does). The per-row losses
(``reduces_over == "rows"``) return ``[B]`` and ``"mean"`` divides by the number of rows with at
least one unmasked label (``B`` without a mask). An empty mean is 0, not NaN.

Half-precision inputs (float16, bfloat16) are computed in float32 and the loss is returned in
float32, as autocast does for :func:`torch.nn.functional.binary_cross_entropy_with_logits`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, Literal

import torch
from torch import nn

Reduction = Literal["none", "mean", "sum"]
REDUCTIONS = ("none", "mean", "sum")


@dataclass(frozen=True)
class LossInputs:
    """Validated inputs, in the compute dtype (float32 for half-precision logits).

    Attributes:
        logits: ``[B, M]`` floating, finite.
        targets: ``[B, M]`` 0.0/1.0 in the dtype of ``logits``.
        weight: ``[B, M]`` non-negative, or ``None``.
        mask: ``[B, M]`` bool (``True`` = label takes part), or ``None``.
    """

    logits: torch.Tensor
    targets: torch.Tensor
    weight: torch.Tensor | None
    mask: torch.Tensor | None

    @cached_property
    def keep(self) -> torch.Tensor:
        """``[B, M]`` bool: labels that take part (the mask, or all ``True``)."""
        if self.mask is None:
            return torch.ones_like(self.targets, dtype=torch.bool)
        return self.mask

    @cached_property
    def positives(self) -> torch.Tensor:
        """``[B, M]`` bool: unmasked labels with target 1."""
        is_positive = self.targets == 1
        return is_positive if self.mask is None else self.mask & is_positive

    @cached_property
    def negatives(self) -> torch.Tensor:
        """``[B, M]`` bool: unmasked labels with target 0."""
        is_negative = self.targets == 0
        return is_negative if self.mask is None else self.mask & is_negative

    def weight_or_ones(self) -> torch.Tensor:
        """``weight`` as ``[B, M]``, ones where none was given."""
        return self.weight if self.weight is not None else torch.ones_like(self.logits)


# ---------------------------------------------------------------------------------- validation
def _where(bad: torch.Tensor) -> str:
    index = [int(i) for i in bad.nonzero()[0].tolist()]
    if len(index) == 2:
        return f"row {index[0]}, label {index[1]}"
    return f"index {tuple(index)}"


def _shape(t: torch.Tensor | torch.Size | tuple) -> list[int]:
    return list(t.shape if isinstance(t, torch.Tensor) else t)


def _broadcast_to(name: str, value: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    try:
        if torch.broadcast_shapes(value.shape, shape) != shape:
            raise RuntimeError
    except RuntimeError:
        raise ValueError(
            f"Expected `{name}` broadcastable to [B, M] = {_shape(shape)}, got shape {_shape(value)}"
        ) from None
    return value.expand(shape)


def _all_finite(tensor: torch.Tensor) -> bool:
    # One float64 sum instead of isfinite + all (several passes): it is finite iff every entry
    # is, unless finite entries overflow float64; only then is the full check needed.
    if bool(torch.isfinite(tensor.sum(dtype=torch.float64))):
        return True
    return bool(torch.isfinite(tensor).all())


def _all_binary(tensor: torch.Tensor) -> bool:
    # Three reductions, no [B, M] temporaries: values in [0, 1] whose sum equals the number of
    # non-zeros are all 0 or 1 (each non-zero is <= 1, so the sum reaches the count only if each
    # is 1). NaN fails the range test.
    if tensor.numel() == 0:
        return True
    low, high = torch.aminmax(tensor)
    total = tensor.sum(dtype=torch.float64)
    return bool((low >= 0) & (high <= 1) & (total == torch.count_nonzero(tensor)))


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a loss is computed in: float32 for half precision, else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def validate_inputs(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    *,
    pos_weight: torch.Tensor | None = None,
    validate_args: bool = True,
) -> LossInputs:
    """Check shapes, dtypes and values; return :class:`LossInputs` in the compute dtype.

    Shapes and dtypes are always checked. With ``validate_args`` (the default) values are checked
    too, which costs a few passes over the inputs and one device synchronisation: logits must be
    finite, targets 0/1 (NaN is rejected), weights finite and non-negative.

    Raises:
        ValueError: naming the argument, what was expected and what was got (with the first
            offending row and label).
    """
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"Expected `logits` to be a torch.Tensor, got {type(logits).__name__}")
    if not isinstance(targets, torch.Tensor):
        raise ValueError(f"Expected `targets` to be a torch.Tensor, got {type(targets).__name__}")
    if not logits.is_floating_point():
        raise ValueError(f"Expected floating-point `logits`, got dtype {logits.dtype}")
    if logits.dim() != 2:
        raise ValueError(f"Expected `logits` of shape [B, M], got shape {_shape(logits)}")
    if logits.shape[1] < 1:
        raise ValueError(f"Expected at least one label (M >= 1), got `logits` of shape {_shape(logits)}")
    if targets.shape != logits.shape:
        raise ValueError(
            f"Expected `targets` with the shape of `logits` {_shape(logits)}, got {_shape(targets)}"
        )
    if targets.is_complex():
        raise ValueError(f"Expected real 0/1 `targets`, got dtype {targets.dtype}")
    dtype = compute_dtype(logits.dtype)
    shape = logits.shape
    if validate_args:
        if not _all_finite(logits):
            bad = ~torch.isfinite(logits)
            raise ValueError(
                f"Expected finite `logits`, got {logits[bad][0].item()} at {_where(bad)}"
            )
        if targets.dtype != torch.bool and not _all_binary(targets):
            bad = (targets != 0) & (targets != 1)  # NaN compares unequal to both
            raise ValueError(
                f"Expected `targets` to contain only 0 and 1, got {targets[bad][0].item()} "
                f"at {_where(bad)}"
            )
    if weight is not None:
        weight = torch.as_tensor(weight, device=logits.device)
        if not weight.is_floating_point():
            weight = weight.to(dtype)
        _broadcast_to("weight", weight, shape)
        if validate_args:  # on the weight as given ([M], say), before broadcasting
            bad = ~(torch.isfinite(weight) & (weight >= 0))
            if bool(bad.any()):
                raise ValueError(
                    f"Expected finite non-negative `weight`, got {weight[bad][0].item()} at {_where(bad)}"
                )
        weight = _broadcast_to("weight", weight.to(dtype), shape)
    if pos_weight is not None:
        pos_weight = torch.as_tensor(pos_weight, device=logits.device)
        _broadcast_to("pos_weight", pos_weight, shape)
        if validate_args and not bool(torch.isfinite(pos_weight).all()):
            raise ValueError("Expected finite `pos_weight`, got a non-finite value")
    if mask is not None:
        mask = torch.as_tensor(mask, device=logits.device)
        if mask.dtype != torch.bool:
            raise ValueError(
                f"Expected a bool `mask` (True where the label takes part), got dtype {mask.dtype}"
            )
        mask = _broadcast_to("mask", mask, shape)
    return LossInputs(logits.to(dtype), targets.to(dtype), weight, mask)


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"Expected `reduction` in {REDUCTIONS}, got {reduction!r}")
    return reduction


# ---------------------------------------------------------------------------------- reduction
def reduce_loss(
    values: torch.Tensor,
    inputs: LossInputs,
    reduction: str,
    reduces_over: Literal["elements", "rows"],
) -> torch.Tensor:
    """Reduce ``[B, M]`` (elements) or ``[B]`` (rows) losses; masked entries must already be 0.

    ``"mean"`` divides by :func:`mean_count`; an empty mean is 0.
    """
    if reduction == "none":
        return values
    total = values.sum()
    if reduction == "sum":
        return total
    count = mean_count(inputs.mask, inputs.logits.shape, reduces_over)
    if isinstance(count, int):
        return total / max(count, 1)
    return total / count.clamp_min(1).to(total.dtype)


def mean_count(
    mask: torch.Tensor | None, shape: torch.Size, reduces_over: Literal["elements", "rows"]
) -> int | torch.Tensor:
    """What ``"mean"`` divides by: unmasked elements, or rows with at least one unmasked label."""
    if reduces_over == "elements":
        return shape[0] * shape[1] if mask is None else mask.sum()
    return shape[0] if mask is None else mask.any(-1).sum()


def apply_loss(
    compute: Callable[[LossInputs], torch.Tensor],
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None,
    mask: torch.Tensor | None,
    reduction: str,
    reduces_over: Literal["elements", "rows"],
    *,
    validate_args: bool = True,
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The template of every loss: validate -> ``compute`` -> zero masked entries -> reduce."""
    check_reduction(reduction)
    inputs = validate_inputs(
        logits, targets, weight, mask, pos_weight=pos_weight, validate_args=validate_args
    )
    values = compute(inputs)
    if inputs.mask is not None:
        keep = inputs.mask if reduces_over == "elements" else inputs.mask.any(-1)
        values = torch.where(keep, values, torch.zeros((), dtype=values.dtype, device=values.device))
    return reduce_loss(values, inputs, reduction, reduces_over)


# ---------------------------------------------------------------------------------- helpers
class _PairLogSumExp(torch.autograd.Function):
    """Both group log-sum-exps of :func:`pair_logsumexp` from one exponential pass.

    Hand-written because autograd through two masked ``torch.logsumexp`` calls costs about twice
    the time (each group masks, exponentiates and sums all ``B x M`` entries, forward and
    backward), which matters for the O(M) pairwise losses whose whole cost is these sums.
    """

    @staticmethod
    def forward(ctx, scores, positives, negatives, log_weight, masked):
        signed = torch.where(positives, -scores, scores)  # -s on positives, s on negatives
        if log_weight is not None:
            signed = signed + log_weight
        if masked:  # labels in neither group: exp(-inf) = 0, no overflow, no gradient
            signed.masked_fill_(~(positives | negatives), float("-inf"))
        peak_pos = signed.masked_fill(~positives, float("-inf")).amax(-1)
        peak_neg = signed.masked_fill(~negatives, float("-inf")).amax(-1)
        peak_pos = torch.where(torch.isfinite(peak_pos), peak_pos, torch.zeros_like(peak_pos))
        peak_neg = torch.where(torch.isfinite(peak_neg), peak_neg, torch.zeros_like(peak_neg))
        exps = signed.sub_(torch.where(positives, peak_pos[:, None], peak_neg[:, None])).exp_()
        sum_pos = torch.linalg.vecdot(exps, positives.to(exps.dtype))
        sum_neg = torch.linalg.vecdot(exps, negatives.to(exps.dtype))
        ctx.save_for_backward(exps, positives, sum_pos, sum_neg)
        # log(0) = -inf for an empty group, with no gradient taken through it
        return peak_pos + torch.log(sum_pos), peak_neg + torch.log(sum_neg)

    @staticmethod
    def backward(ctx, grad_pos, grad_neg):
        exps, positives, sum_pos, sum_neg = ctx.saved_tensors
        zero = torch.zeros((), dtype=exps.dtype, device=exps.device)
        coef_pos = torch.where(sum_pos > 0, grad_pos / sum_pos, zero)
        coef_neg = torch.where(sum_neg > 0, grad_neg / sum_neg, zero)
        grad_signed = exps * torch.where(positives, coef_pos[:, None], coef_neg[:, None])
        grad_scores = torch.where(positives, -grad_signed, grad_signed) if ctx.needs_input_grad[0] else None
        grad_log_weight = grad_signed if ctx.needs_input_grad[3] else None
        return grad_scores, None, None, grad_log_weight, None


def pair_logsumexp(
    scores: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    weight: torch.Tensor | None = None,
    *,
    partial: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log sum_{p in P} w_p e^{-s_p}, log sum_{n in N} w_n e^{s_n})`` per row, ``[B]`` each.

    The two factors of every exponential pairwise sum, ``sum_{p,n} w_p w_n e^{s_n - s_p}``.
    An empty group (or one of zero weight) gives ``-inf``; gradients are finite everywhere and
    zero for labels in neither group.

    Args:
        scores: ``[B, M]`` logits.
        positives, negatives: ``[B, M]`` bool, disjoint.
        weight: ``[B, M]`` non-negative, or ``None``.
        partial: some labels may be in neither group (there is a mask). ``False`` saves a pass
            when ``positives | negatives`` is all true.
    """
    log_weight = None
    if weight is not None:
        nonzero = weight > 0
        positives, negatives = positives & nonzero, negatives & nonzero
        # log(1) where the weight is 0: those labels are dropped, and log(0) would give 0 * inf.
        log_weight = torch.log(torch.where(nonzero, weight, torch.ones_like(weight)))
    masked = partial or weight is not None
    return _PairLogSumExp.apply(scores, positives, negatives, log_weight, masked)


# ---------------------------------------------------------------------------------- base class
class Loss(nn.Module):
    """Base of every loss: ``forward(logits, targets, *, weight=None, mask=None)``.

    Subclasses set the class attributes and implement :meth:`compute`; the functional twin of each
    loss (``comorbid.losses.<name>``) runs the same code.

    Args:
        weight: non-negative per-label rescaling, ``[M]`` or broadcastable to ``[B, M]``. A
            ``weight`` passed to ``forward`` is multiplied with it.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``, as in :class:`torch.nn.BCEWithLogitsLoss`.
        validate_args: check values (finite logits, 0/1 targets, non-negative weights) on every
            call; costs a few passes and one device synchronisation. Shapes are always checked.

    Class attributes:
        name: the registry key.
        decomposable: the loss is a sum of independent per-label terms (bce, focal, asymmetric).
        reduces_over: ``"elements"`` (``reduction="none"`` gives ``[B, M]``) or ``"rows"`` (``[B]``).
        label_tensors: buffers indexed by label, with how many trailing dimensions are labels;
            :meth:`select_labels` slices them.
    """

    name: ClassVar[str]
    decomposable: ClassVar[bool] = False
    reduces_over: ClassVar[Literal["elements", "rows"]]
    label_tensors: ClassVar[dict[str, int]] = {"weight": 1}

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        reduction: Reduction = "mean",
        *,
        validate_args: bool = True,
    ):
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.validate_args = validate_args
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight))

    def hyperparameters(self) -> dict:
        """Keyword arguments of the functional twin other than the inputs (for repr and twins)."""
        return {}

    def compute(self, inputs: LossInputs) -> torch.Tensor:  # pragma: no cover - abstract
        """Per-element ``[B, M]`` or per-row ``[B]`` loss; masked entries may hold anything."""
        raise NotImplementedError

    def forward(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        weight: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss of ``logits`` ``[B, M]`` against 0/1 ``targets`` ``[B, M]``.

        Returns:
            A scalar, or ``[B, M]`` / ``[B]`` (see ``reduces_over``) with ``reduction="none"``.
        """
        return apply_loss(
            self.compute,
            logits,
            targets,
            combine_weights(self.weight, weight),
            mask,
            self.reduction,
            self.reduces_over,
            validate_args=self.validate_args,
            **self._extra_inputs(),
        )

    def _extra_inputs(self) -> dict:
        return {}

    def select_labels(self, labels: torch.Tensor) -> Loss:
        """The same loss over the labels ``labels`` (a subset or a reordering of ``0..M-1``).

        Label-indexed buffers (weights, a cost matrix, a hierarchy) are sliced accordingly, so
        ``loss.select_labels(idx)(logits[:, idx], targets[:, idx])`` is the loss of the
        sub-problem. Used by the conformance suite for permutation and mask checks.
        """
        labels = torch.as_tensor(labels, dtype=torch.long)
        new = copy.deepcopy(self)
        for name, n_dims in self.label_tensors.items():
            tensor = getattr(self, name)
            if tensor is None or tensor.dim() == 0 or tensor.shape[-1] == 1:
                continue
            for offset in range(1, n_dims + 1):
                tensor = tensor.index_select(tensor.dim() - offset, labels.to(tensor.device))
            setattr(new, name, tensor)
        return new

    def extra_repr(self) -> str:
        parts = [f"reduction={self.reduction!r}"]
        parts += [
            f"{key}={value!r}"
            for key, value in self.hyperparameters().items()
            if value is not None and not isinstance(value, torch.Tensor)
        ]
        return ", ".join(parts)


def combine_weights(first: torch.Tensor | None, second: torch.Tensor | None) -> torch.Tensor | None:
    """The product of two optional weights (``None`` means ones)."""
    if first is None:
        return second
    if second is None:
        return first
    second = torch.as_tensor(second, device=first.device)
    try:
        return first * second
    except RuntimeError:
        raise ValueError(
            f"Expected the `weight` passed to forward to broadcast with the loss's `weight` "
            f"{_shape(first)}, got shape {_shape(second)}"
        ) from None
