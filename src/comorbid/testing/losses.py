"""Conformance suite for losses, and naive references to check fast losses against.

A loss plugin passes when every ``check_*`` function below returns without raising
``AssertionError``. Each check takes ``make_loss``, a callable ``n_labels -> Loss`` (so losses with
a label structure, such as a cost matrix or a hierarchy, can build one of the right size), and
where inputs matter a :class:`LossCase` from :func:`make_case`. Nothing here needs pytest or
hypothesis; our tests drive these checks with hypothesis-drawn cases, and plugin authors can
call :func:`run_conformance` for a fixed-seed pass over all of them::

    from comorbid.testing.losses import run_conformance
    run_conformance(lambda n_labels: MyLoss())

The naive references (``naive_*``) are written straight from each paper's formula, pairwise ones
with the ``[B, M, M]`` pair tensor, for equality tests in float64 and for the benchmark; they
take ``(logits, targets, weight=None, mask=None)`` and return the ``reduction="none"`` loss.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from comorbid.losses.base import Loss

LossFactory = Callable[[int], Loss]

__all__ = [
    "LossCase",
    "make_case",
    "check_gradcheck",
    "check_extreme_logits",
    "check_half_precision",
    "check_all_masked_rows",
    "check_rows_without_positives_or_negatives",
    "check_permutation_equivariance",
    "check_weight_ones",
    "check_reductions",
    "check_mask_takes_no_part",
    "check_mask_is_deletion",
    "check_invalid_inputs",
    "check_functional_twin",
    "check_matches_reference",
    "run_conformance",
    "naive_bp_mll",
    "naive_lsep",
    "naive_pairwise_hinge",
    "naive_zlpr",
    "naive_sigmoid_f1",
    "naive_soft_jaccard",
    "naive_hierarchical",
]


# ---------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class LossCase:
    """One batch of loss inputs: ``logits``, ``targets`` ``[B, M]``, optional ``weight``, ``mask``."""

    logits: torch.Tensor
    targets: torch.Tensor
    weight: torch.Tensor | None = None
    mask: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.logits.shape)

    def kwargs(self) -> dict:
        return {"weight": self.weight, "mask": self.mask}


def make_case(
    batch_size: int,
    n_labels: int,
    seed: int,
    *,
    positive_rate: float = 0.4,
    mask_rate: float = 0.0,
    weighted: bool = False,
    scale: float = 3.0,
    dtype: torch.dtype = torch.float64,
) -> LossCase:
    """A random case: logits ``scale * N(0, 1)``, Bernoulli(``positive_rate``) float targets,
    a mask dropping each label with probability ``mask_rate`` (``None`` if 0), per-element
    weights in ``[0.5, 2)`` if ``weighted``."""
    generator = torch.Generator().manual_seed(seed)
    shape = (batch_size, n_labels)
    logits = scale * torch.randn(shape, generator=generator, dtype=torch.float64)
    targets = (torch.rand(shape, generator=generator) < positive_rate).to(torch.float64)
    mask = (torch.rand(shape, generator=generator) >= mask_rate) if mask_rate > 0 else None
    weight = 0.5 + 1.5 * torch.rand(shape, generator=generator, dtype=torch.float64) if weighted else None
    return LossCase(
        logits.to(dtype),
        targets.to(dtype),
        None if weight is None else weight.to(dtype),
        mask,
    )


def _with_reduction(loss: Loss, reduction: str) -> Loss:
    loss = copy.deepcopy(loss)
    loss.reduction = reduction
    return loss


def _per_unit_shape(loss: Loss, shape: tuple[int, int]) -> tuple[int, ...]:
    return shape if loss.reduces_over == "elements" else shape[:1]


def _loss_and_grad(loss: Loss, case: LossCase, reduction: str = "sum"):
    logits = case.logits.detach().clone().requires_grad_(True)
    value = _with_reduction(loss, reduction)(logits, case.targets, **case.kwargs())
    (grad,) = torch.autograd.grad(value.sum(), logits, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(logits)
    return value, grad


def _assert_finite(name: str, tensor: torch.Tensor, what: str):
    assert bool(torch.isfinite(tensor).all()), f"{name}: non-finite {what}: {tensor}"


def _name(loss: Loss) -> str:
    return getattr(loss, "name", type(loss).__name__)


# ---------------------------------------------------------------------------------- checks
def check_gradcheck(make_loss: LossFactory, seed: int = 0, batch_size: int = 3, n_labels: int = 5) -> None:
    """float64 :func:`torch.autograd.gradcheck` with respect to the logits, with and without a
    weight and a mask, for every reduction."""
    for weighted, mask_rate in ((False, 0.0), (True, 0.3)):
        case = make_case(batch_size, n_labels, seed, weighted=weighted, mask_rate=mask_rate, scale=1.5)
        loss = make_loss(n_labels)
        for reduction in ("none", "mean", "sum"):
            module = _with_reduction(loss, reduction)

            def function(logits, module=module, case=case):
                return module(logits, case.targets, **case.kwargs())

            logits = case.logits.detach().clone().requires_grad_(True)
            assert torch.autograd.gradcheck(function, (logits,), eps=1e-6, atol=1e-6, rtol=1e-4), (
                f"{_name(loss)}: gradcheck failed (reduction={reduction}, weighted={weighted})"
            )


def check_extreme_logits(make_loss: LossFactory, seed: int = 0, magnitude: float = 1e4) -> None:
    """Logits of +-``magnitude`` (float32 and float64), right and wrong side, mixed with moderate
    ones: finite value and finite gradient."""
    n_labels = 6
    loss = make_loss(n_labels)
    for dtype in (torch.float32, torch.float64):
        case = make_case(4, n_labels, seed, dtype=dtype)
        signs = torch.where(torch.rand(case.shape, generator=torch.Generator().manual_seed(seed)) < 0.5, -1.0, 1.0)
        extremes = [
            magnitude * signs,  # random sides
            magnitude * (2 * case.targets - 1),  # all right
            -magnitude * (2 * case.targets - 1),  # all wrong
            torch.where(signs > 0, magnitude * signs, case.logits.double()),  # mixed with moderate
        ]
        for logits in extremes:
            extreme = replace(case, logits=logits.to(dtype))
            for reduction in ("none", "mean"):
                value, grad = _loss_and_grad(loss, extreme, reduction)
                _assert_finite(_name(loss), value, f"loss at logits +-{magnitude:g} ({dtype})")
                _assert_finite(_name(loss), grad, f"gradient at logits +-{magnitude:g} ({dtype})")


def check_half_precision(make_loss: LossFactory, dtype: torch.dtype, seed: int = 0) -> None:
    """float16 / bfloat16 logits: the loss is float32, finite, equal to the loss of the same logits
    cast to float32 (computed internally in float32), with a finite gradient of the input dtype."""
    n_labels = 6
    loss = make_loss(n_labels)
    case = make_case(4, n_labels, seed, mask_rate=0.2, weighted=True, scale=2.0, dtype=torch.float32)
    half = replace(case, logits=case.logits.to(dtype))
    for reduction in ("none", "mean"):
        value, grad = _loss_and_grad(loss, half, reduction)
        assert value.dtype == torch.float32, f"{_name(loss)}: {dtype} input gave a {value.dtype} loss, expected float32"
        assert grad.dtype == dtype, f"{_name(loss)}: gradient dtype {grad.dtype}, expected {dtype}"
        _assert_finite(_name(loss), value, f"{dtype} loss")
        _assert_finite(_name(loss), grad, f"{dtype} gradient")
        reference = _with_reduction(loss, reduction)(half.logits.float(), case.targets, **case.kwargs())
        torch.testing.assert_close(value, reference, rtol=1e-6, atol=1e-6,
                                   msg=lambda m: f"{_name(loss)}: {dtype} differs from float32: {m}")


def check_all_masked_rows(make_loss: LossFactory, case: LossCase) -> None:
    """A row whose labels are all masked contributes nothing: zero ``"none"`` entries, zero
    gradient, and ``"mean"`` and ``"sum"`` as without the row."""
    batch_size, n_labels = case.shape
    loss = make_loss(n_labels)
    mask = case.mask if case.mask is not None else torch.ones(case.shape, dtype=torch.bool)
    generator = torch.Generator().manual_seed(batch_size * 100 + n_labels)
    extra = LossCase(
        torch.randn((1, n_labels), generator=generator, dtype=torch.float64).to(case.logits.dtype),
        (torch.rand((1, n_labels), generator=generator) < 0.5).to(case.targets.dtype),
        None if case.weight is None else torch.ones((1, n_labels), dtype=case.weight.dtype),
    )
    grown = LossCase(
        torch.cat([case.logits, extra.logits]),
        torch.cat([case.targets, extra.targets]),
        None if case.weight is None else torch.cat([case.weight, extra.weight]),
        torch.cat([mask, torch.zeros((1, n_labels), dtype=torch.bool)]),
    )
    base = replace(case, mask=mask)
    none, grad = _loss_and_grad(loss, grown, "none")
    assert bool((none[-1] == 0).all()), f"{_name(loss)}: all-masked row gave loss {none[-1]}"
    assert bool((grad[-1] == 0).all()), f"{_name(loss)}: all-masked row got gradient {grad[-1]}"
    for reduction in ("mean", "sum"):
        with_row = _with_reduction(loss, reduction)(grown.logits, grown.targets, **grown.kwargs())
        without = _with_reduction(loss, reduction)(base.logits, base.targets, **base.kwargs())
        torch.testing.assert_close(with_row, without, rtol=1e-9, atol=1e-12,
                                   msg=lambda m: f"{_name(loss)}: all-masked row changed '{reduction}': {m}")


def check_rows_without_positives_or_negatives(make_loss: LossFactory, seed: int = 0) -> None:
    """Rows with no positive, with no negative, and with a single label: finite value and
    gradient, per row and reduced, in float64 and float32."""
    n_labels = 5
    loss = make_loss(n_labels)
    for dtype in (torch.float64, torch.float32):
        case = make_case(4, n_labels, seed, dtype=dtype)
        targets = case.targets.clone()
        targets[0] = 0
        targets[1] = 1
        mask = torch.ones(case.shape, dtype=torch.bool)
        mask[2] = False
        mask[2, 0] = True  # a row with one unmasked label
        for variant in (replace(case, targets=targets), replace(case, targets=targets, mask=mask)):
            for reduction in ("none", "mean", "sum"):
                value, grad = _loss_and_grad(loss, variant, reduction)
                _assert_finite(_name(loss), value, f"loss for rows without positives/negatives ({dtype})")
                _assert_finite(_name(loss), grad, f"gradient for rows without positives/negatives ({dtype})")


def check_permutation_equivariance(make_loss: LossFactory, case: LossCase, seed: int = 0) -> None:
    """Permuting labels (logits, targets, weight, mask and the loss's label structure together,
    via :meth:`Loss.select_labels`) permutes ``"none"`` element losses and keeps row losses."""
    n_labels = case.shape[1]
    loss = _with_reduction(make_loss(n_labels), "none")
    perm = torch.randperm(n_labels, generator=torch.Generator().manual_seed(seed))
    permuted = LossCase(
        case.logits[:, perm],
        case.targets[:, perm],
        None if case.weight is None else case.weight[:, perm],
        None if case.mask is None else case.mask[:, perm],
    )
    expected = loss(case.logits, case.targets, **case.kwargs())
    got = loss.select_labels(perm)(permuted.logits, permuted.targets, **permuted.kwargs())
    if loss.reduces_over == "elements":
        expected = expected[:, perm]
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-10,
                               msg=lambda m: f"{_name(loss)}: not permutation equivariant: {m}")


def check_weight_ones(make_loss: LossFactory, case: LossCase) -> None:
    """``weight`` of ones (``[M]`` and ``[B, M]``, in the constructor or in ``forward``) equals no
    weight."""
    batch_size, n_labels = case.shape
    loss = make_loss(n_labels)
    dtype = case.logits.dtype
    for reduction in ("none", "mean", "sum"):
        module = _with_reduction(loss, reduction)
        plain = module(case.logits, case.targets, mask=case.mask)
        for ones in (torch.ones(n_labels, dtype=dtype), torch.ones(case.shape, dtype=dtype)):
            weighted = module(case.logits, case.targets, weight=ones, mask=case.mask)
            torch.testing.assert_close(weighted, plain, rtol=1e-12, atol=1e-12,
                                       msg=lambda m: f"{_name(loss)}: weight=ones differs from no weight: {m}")
        if loss.weight is None:
            constructed = copy.deepcopy(module)
            constructed.weight = torch.ones(n_labels, dtype=dtype)
            torch.testing.assert_close(constructed(case.logits, case.targets, mask=case.mask), plain,
                                       rtol=1e-12, atol=1e-12,
                                       msg=lambda m: f"{_name(loss)}: constructor weight=ones differs: {m}")


def check_reductions(make_loss: LossFactory, case: LossCase) -> None:
    """``"none"`` has the declared shape, ``"sum"`` is its sum, and ``"mean" * N == "sum"`` with
    ``N`` the unmasked elements (per-element losses) or the rows with an unmasked label (per-row)."""
    batch_size, n_labels = case.shape
    loss = make_loss(n_labels)
    values = {r: _with_reduction(loss, r)(case.logits, case.targets, **case.kwargs()) for r in ("none", "mean", "sum")}
    assert values["none"].shape == _per_unit_shape(loss, case.shape), (
        f"{_name(loss)}: reduction='none' gave shape {tuple(values['none'].shape)}, expected "
        f"{_per_unit_shape(loss, case.shape)} (reduces_over={loss.reduces_over!r})"
    )
    assert values["mean"].dim() == 0 and values["sum"].dim() == 0
    torch.testing.assert_close(values["sum"], values["none"].sum(), rtol=1e-12, atol=1e-12)
    mask = case.mask if case.mask is not None else torch.ones(case.shape, dtype=torch.bool)
    count = int(mask.sum()) if loss.reduces_over == "elements" else int(mask.any(-1).sum())
    expected_mean = values["sum"] / count if count else torch.zeros_like(values["sum"])
    torch.testing.assert_close(values["mean"], expected_mean, rtol=1e-12, atol=1e-12,
                               msg=lambda m: f"{_name(loss)}: mean * {count} != sum: {m}")


def check_mask_takes_no_part(make_loss: LossFactory, case: LossCase, seed: int = 0) -> None:
    """Changing logits and targets (and weights) of masked labels changes nothing; their logits
    get zero gradient; masked entries of per-element ``"none"`` output are 0."""
    if case.mask is None:
        return
    loss = make_loss(case.shape[1])
    generator = torch.Generator().manual_seed(seed)
    masked = ~case.mask
    other_logits = 5 * torch.randn(case.shape, generator=generator, dtype=torch.float64).to(case.logits.dtype)
    other_targets = (torch.rand(case.shape, generator=generator) < 0.5).to(case.targets.dtype)
    changed = replace(
        case,
        logits=torch.where(masked, other_logits, case.logits),
        targets=torch.where(masked, other_targets, case.targets),
        weight=None if case.weight is None else torch.where(masked, 3.0 * case.weight, case.weight),
    )
    value, grad = _loss_and_grad(loss, case, "none")
    changed_value, _ = _loss_and_grad(loss, changed, "none")
    torch.testing.assert_close(changed_value, value, rtol=1e-9, atol=1e-10,
                               msg=lambda m: f"{_name(loss)}: masked labels changed the loss: {m}")
    assert bool((grad[masked] == 0).all()), f"{_name(loss)}: masked labels got gradient {grad[masked]}"
    if loss.reduces_over == "elements":
        assert bool((value[masked] == 0).all()), f"{_name(loss)}: masked elements have loss {value[masked]}"


def check_mask_is_deletion(make_loss: LossFactory, case: LossCase) -> None:
    """Masking a row's labels gives the loss of that row with the labels deleted (and the loss's
    label structure restricted to the rest by :meth:`Loss.select_labels`)."""
    if case.mask is None:
        return
    loss = _with_reduction(make_loss(case.shape[1]), "none")
    full = loss(case.logits, case.targets, **case.kwargs())
    for row in range(case.shape[0]):
        kept = case.mask[row].nonzero().flatten()
        if len(kept) == 0:
            continue
        sub = loss.select_labels(kept)
        weight = None if case.weight is None else case.weight[row : row + 1, kept]
        value = sub(case.logits[row : row + 1, kept], case.targets[row : row + 1, kept], weight=weight)
        expected = full[row : row + 1, kept] if loss.reduces_over == "elements" else full[row : row + 1]
        torch.testing.assert_close(value, expected, rtol=1e-9, atol=1e-10,
                                   msg=lambda m: f"{_name(loss)}: masking row {row} != deleting labels: {m}")


def _expect_value_error(call: Callable[[], object], pattern: str, what: str, name: str) -> None:
    try:
        call()
    except ValueError as error:
        assert re.search(pattern, str(error)), f"{name}: {what}: message {str(error)!r} lacks {pattern!r}"
        return
    except Exception as error:  # noqa: BLE001 - the check is that it is a ValueError
        raise AssertionError(f"{name}: {what} raised {type(error).__name__}: {error}, expected ValueError") from error
    raise AssertionError(f"{name}: {what} raised nothing, expected ValueError")


def check_invalid_inputs(make_loss: LossFactory) -> None:
    """Targets outside {0, 1} (2, -1, 0.5, NaN), non-finite logits, mismatched or wrong-rank
    shapes, a non-bool mask and bad weights raise ``ValueError`` with a message saying what was
    expected."""
    n_labels = 4
    loss = make_loss(n_labels)
    name = _name(loss)
    case = make_case(3, n_labels, 0)
    for bad in (2.0, -1.0, 0.5, math.nan):
        targets = case.targets.clone()
        targets[1, 2] = bad
        _expect_value_error(lambda t=targets: loss(case.logits, t), r"0 and 1.*row 1, label 2", f"targets {bad}", name)
    integer_targets = case.targets.long()
    integer_targets[0, 0] = 2
    _expect_value_error(lambda: loss(case.logits, integer_targets), r"0 and 1", "integer target 2", name)
    for bad in (math.nan, math.inf):
        logits = case.logits.clone()
        logits[2, 1] = bad
        _expect_value_error(lambda x=logits: loss(x, case.targets), r"finite.*row 2, label 1", f"logits {bad}", name)
    _expect_value_error(lambda: loss(case.logits, case.targets[:, :-1]), r"shape", "targets of another shape", name)
    _expect_value_error(lambda: loss(case.logits[0], case.targets[0]), r"\[B, M\]", "1-D logits", name)
    _expect_value_error(lambda: loss(case.logits.long(), case.targets), r"floating", "integer logits", name)
    _expect_value_error(lambda: loss(case.logits, case.targets, mask=torch.ones(case.shape)), r"bool", "float mask", name)
    _expect_value_error(lambda: loss(case.logits, case.targets, mask=torch.ones(2, 7, dtype=torch.bool)),
                        r"broadcastable", "mask of another shape", name)
    _expect_value_error(lambda: loss(case.logits, case.targets, weight=torch.ones(n_labels + 1, dtype=torch.float64)),
                        r"broadcastable|weight", "weight of another shape", name)
    _expect_value_error(lambda: loss(case.logits, case.targets, weight=-torch.ones(n_labels, dtype=torch.float64)),
                        r"non-negative", "negative weight", name)
    _expect_value_error(lambda: _with_reduction(loss, "average")(case.logits, case.targets),
                        r"reduction", "unknown reduction", name)


def check_functional_twin(make_loss: LossFactory, functional: Callable, case: LossCase, **hyperparameters) -> None:
    """The functional form with the same hyperparameters returns the module's value."""
    loss = make_loss(case.shape[1])
    for reduction in ("none", "mean", "sum"):
        expected = _with_reduction(loss, reduction)(case.logits, case.targets, **case.kwargs())
        got = functional(case.logits, case.targets, case.weight, case.mask, reduction, **hyperparameters)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12,
                                   msg=lambda m: f"{_name(loss)}: functional twin differs ({reduction}): {m}")


def check_matches_reference(
    make_loss: LossFactory,
    reference: Callable,
    case: LossCase,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    gradients: bool = True,
) -> None:
    """``reduction="none"`` values (and gradients of their sum) equal ``reference(logits,
    targets, weight, mask)`` within ``rtol``/``atol`` (use float64 cases)."""
    loss = make_loss(case.shape[1])
    value, grad = _loss_and_grad(loss, case, "none")
    logits = case.logits.detach().clone().requires_grad_(True)
    expected = reference(logits, case.targets, case.weight, case.mask)
    torch.testing.assert_close(value, expected.detach(), rtol=rtol, atol=atol,
                               msg=lambda m: f"{_name(loss)}: differs from the reference: {m}")
    if gradients:
        (expected_grad,) = torch.autograd.grad(expected.sum(), logits)
        torch.testing.assert_close(grad, expected_grad, rtol=rtol, atol=atol,
                                   msg=lambda m: f"{_name(loss)}: gradient differs from the reference's: {m}")


def run_conformance(
    make_loss: LossFactory,
    *,
    functional: Callable | None = None,
    reference: Callable | None = None,
    seeds: range = range(3),
) -> None:
    """Every check on fixed-seed cases (with and without weights and masks, empty rows included)."""
    check_gradcheck(make_loss)
    check_extreme_logits(make_loss)
    check_half_precision(make_loss, torch.float16)
    check_half_precision(make_loss, torch.bfloat16)
    check_rows_without_positives_or_negatives(make_loss)
    check_invalid_inputs(make_loss)
    for seed in seeds:
        for weighted, mask_rate, positive_rate in ((False, 0.0, 0.4), (True, 0.3, 0.4), (True, 0.5, 0.1)):
            case = make_case(4, 6, seed, weighted=weighted, mask_rate=mask_rate, positive_rate=positive_rate)
            check_permutation_equivariance(make_loss, case, seed)
            check_weight_ones(make_loss, case)
            check_reductions(make_loss, case)
            check_all_masked_rows(make_loss, case)
            check_mask_takes_no_part(make_loss, case, seed)
            check_mask_is_deletion(make_loss, case)
            if functional is not None:
                check_functional_twin(make_loss, functional, case)
            if reference is not None:
                check_matches_reference(make_loss, reference, case)


# ---------------------------------------------------------------------------------- naive references
def _parts(logits, targets, weight, mask):
    keep = torch.ones_like(targets, dtype=torch.bool) if mask is None else mask.expand_as(targets)
    w = torch.ones_like(logits) if weight is None else weight.expand_as(logits).to(logits.dtype)
    positives = keep & (targets == 1)
    negatives = keep & (targets == 0)
    return keep, w, positives, negatives


def _pairs(logits, targets, weight, mask):
    """``margin[b, p, n] = s_p - s_n``, pair weights ``w_p w_n`` (``None`` without a weight) and
    the pair mask, ``[B, M, M]``."""
    keep, _, positives, negatives = _parts(logits, targets, None, mask)
    margin = logits[:, :, None] - logits[:, None, :]
    pair_weight = None
    if weight is not None:
        w = weight.expand_as(logits).to(logits.dtype)
        pair_weight = w[:, :, None] * w[:, None, :]
    is_pair = positives[:, :, None] & negatives[:, None, :]
    return margin, pair_weight, is_pair, positives, negatives, keep


def _weighted(terms, pair_weight):
    return terms if pair_weight is None else pair_weight * terms


def naive_bp_mll(logits, targets, weight=None, mask=None) -> torch.Tensor:
    """BP-MLL by its definition (Zhang & Zhou 2006) over the ``[B, M, M]`` pair tensor; ``[B]``."""
    margin, pair_weight, is_pair, positives, negatives, _ = _pairs(logits, targets, weight, mask)
    total = torch.where(is_pair, _weighted(torch.exp(-margin), pair_weight), 0.0).sum((1, 2))
    return total / (positives.sum(-1) * negatives.sum(-1)).clamp_min(1)


def naive_lsep(logits, targets, weight=None, mask=None) -> torch.Tensor:
    """LSEP by its definition (Li et al. 2017) over the ``[B, M, M]`` pair tensor; ``[B]``."""
    margin, pair_weight, is_pair, *_ = _pairs(logits, targets, weight, mask)
    return torch.log1p(torch.where(is_pair, _weighted(torch.exp(-margin), pair_weight), 0.0).sum((1, 2)))


def naive_pairwise_hinge(logits, targets, weight=None, mask=None, margin: float = 1.0) -> torch.Tensor:
    """The ranking hinge over the ``[B, M, M]`` pair tensor, divided by the unmasked label count
    (``MultiLabelMarginLoss``'s normalisation); ``[B]``."""
    pair_margin, pair_weight, is_pair, _, _, keep = _pairs(logits, targets, weight, mask)
    hinge = torch.clamp(margin - pair_margin, min=0)
    return torch.where(is_pair, _weighted(hinge, pair_weight), 0.0).sum((1, 2)) / keep.sum(-1).clamp_min(1)


def naive_zlpr(logits, targets, weight=None, mask=None) -> torch.Tensor:
    """ZLPR by its definition (Su et al. 2022); ``[B]``."""
    _, w, positives, negatives = _parts(logits, targets, weight, mask)
    negative_sum = torch.where(negatives, w * torch.exp(logits), 0.0).sum(-1)
    positive_sum = torch.where(positives, w * torch.exp(-logits), 0.0).sum(-1)
    return torch.log1p(negative_sum) + torch.log1p(positive_sum)


def _naive_counts(logits, targets, weight, mask, beta, eta):
    keep, w, *_ = _parts(logits, targets, weight, mask)
    soft = 1 / (1 + torch.exp(-beta * (logits + eta)))
    w = torch.where(keep, w, 0.0)
    tp = (w * soft * targets).sum(-1)
    fp = (w * soft * (1 - targets)).sum(-1)
    fn = (w * (1 - soft) * targets).sum(-1)
    return tp, fp, fn, keep


def _naive_ratio_loss(numerator, denominator, keep):
    """``1 - numerator / denominator``; 1 where the denominator is 0 (the documented
    convention), 0 for rows without an unmasked label."""
    defined = denominator > 0
    loss = torch.where(defined, 1 - numerator / torch.where(defined, denominator, 1.0), 1.0)
    return torch.where(keep.any(-1), loss, 0.0)


def naive_sigmoid_f1(logits, targets, weight=None, mask=None, beta=1.0, eta=0.0, smooth=0.0) -> torch.Tensor:
    """``1 - (2tp + c) / (2tp + fp + fn + c)`` per row (Bénédict et al. 2021); ``[B]``."""
    tp, fp, fn, keep = _naive_counts(logits, targets, weight, mask, beta, eta)
    return _naive_ratio_loss(2 * tp + smooth, 2 * tp + fp + fn + smooth, keep)


def naive_soft_jaccard(logits, targets, weight=None, mask=None, beta=1.0, eta=0.0, smooth=0.0) -> torch.Tensor:
    """``1 - (tp + c) / (tp + fp + fn + c)`` per row; ``[B]``."""
    tp, fp, fn, keep = _naive_counts(logits, targets, weight, mask, beta, eta)
    return _naive_ratio_loss(tp + smooth, tp + fp + fn + smooth, keep)


def naive_hierarchical(logits, targets, weight=None, mask=None, *, hierarchy) -> torch.Tensor:
    """MCLoss as the C-HMCNN code computes it (Giunchiglia & Lukasiewicz 2020): probabilities,
    the dense ``[B, M, M]`` max, then binary cross-entropy on them; ``[B, M]``.

    ``hierarchy`` is the reflexive-transitive descendant matrix ``R`` ``[M, M]``. Masked labels
    are left out of the maxima (probability 0 there) and get loss 0.
    """
    keep, w, *_ = _parts(logits, targets, weight, mask)
    relation = hierarchy.to(logits.dtype)
    probs = torch.where(keep, torch.sigmoid(logits), 0.0)

    def constrained(values):  # get_constr_out: max over R[i, j] * values[j]
        return (relation[None, :, :] * values[:, None, :]).amax(-1)

    negative_output = constrained(probs)
    positive_output = constrained(targets * probs)
    train_output = (1 - targets) * negative_output + targets * positive_output
    loss = torch.nn.functional.binary_cross_entropy(train_output, targets, reduction="none")
    return torch.where(keep, w * loss, 0.0)
