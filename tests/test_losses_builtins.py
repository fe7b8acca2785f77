"""Losses against PyTorch built-ins, published code and their documented edge cases."""

from __future__ import annotations

import doctest
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from comorbid import losses
from comorbid.losses import LOSSES, get_loss, hierarchy_pairs, max_constraint
from comorbid.losses import base as losses_base
from comorbid.losses import binary, hierarchy, ranking, set_surrogates, transport
from comorbid.testing import losses as suite

from test_losses import heap_tree, official_asl, torchvision_sigmoid_focal_loss

REDUCTIONS = ("none", "mean", "sum")


def random_inputs(batch_size=5, n_labels=7, seed=0, dtype=torch.float64, positive_rate=0.4):
    generator = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(batch_size, n_labels, generator=generator, dtype=torch.float64)).to(dtype)
    targets = (torch.rand(batch_size, n_labels, generator=generator) < positive_rate).to(dtype)
    return logits, targets


def to_margin_format(targets: torch.Tensor) -> torch.Tensor:
    """0/1 targets -> MultiLabelMarginLoss's format: target indices first, then -1."""
    index = torch.full(targets.shape, -1, dtype=torch.long)
    for row in range(targets.shape[0]):
        positive = targets[row].nonzero().flatten()
        index[row, : len(positive)] = positive
    return index


# ---------------------------------------------------------------------------------- bce
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (7,), (5, 7), (5, 1)])
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_bce_equals_torch_bce_with_logits(reduction, weight_shape, with_pos_weight):
    logits, targets = random_inputs()
    generator = torch.Generator().manual_seed(1)
    weight = None if weight_shape is None else torch.rand(weight_shape, generator=generator, dtype=torch.float64)
    pos_weight = 0.5 + 3 * torch.rand(7, generator=generator, dtype=torch.float64) if with_pos_weight else None
    expected = torch.nn.BCEWithLogitsLoss(weight=weight, reduction=reduction, pos_weight=pos_weight)(logits, targets)
    module = losses.BCELoss(weight=weight, reduction=reduction, pos_weight=pos_weight)
    torch.testing.assert_close(module(logits, targets), expected, rtol=1e-12, atol=1e-12)
    functional = losses.bce(logits, targets, weight, reduction=reduction, pos_weight=pos_weight)
    torch.testing.assert_close(functional, expected, rtol=1e-12, atol=1e-12)
    # bool and integer targets are accepted and mean the same
    torch.testing.assert_close(module(logits, targets.bool()), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(module(logits, targets.long()), expected, rtol=1e-12, atol=1e-12)


def test_bce_mean_equals_multilabel_soft_margin_loss():
    logits, targets = random_inputs()
    weight = torch.linspace(0.5, 2.0, 7, dtype=torch.float64)
    expected = torch.nn.MultiLabelSoftMarginLoss(weight=weight)(logits, targets)
    torch.testing.assert_close(losses.bce(logits, targets, weight), expected, rtol=1e-12, atol=1e-12)


def test_bce_forward_weight_multiplies_constructor_weight():
    logits, targets = random_inputs()
    per_label = torch.linspace(0.5, 2.0, 7, dtype=torch.float64)
    per_row = torch.linspace(1.0, 3.0, 5, dtype=torch.float64)[:, None]
    module = losses.BCELoss(weight=per_label)
    expected = F.binary_cross_entropy_with_logits(logits, targets, weight=per_label * per_row)
    torch.testing.assert_close(module(logits, targets, weight=per_row), expected, rtol=1e-12, atol=1e-12)


def test_bce_select_labels_slices_weight_and_pos_weight():
    logits, targets = random_inputs()
    weight, pos_weight = torch.arange(1.0, 8.0, dtype=torch.float64), torch.arange(2.0, 9.0, dtype=torch.float64)
    module = losses.BCELoss(weight=weight, pos_weight=pos_weight, reduction="none")
    labels = torch.tensor([4, 0, 2])
    got = module.select_labels(labels)(logits[:, labels], targets[:, labels])
    torch.testing.assert_close(got, module(logits, targets)[:, labels])


def test_half_precision_bce_is_float32_like_autocast():
    logits, targets = random_inputs(dtype=torch.float32)
    half = logits.half().requires_grad_(True)
    value = losses.bce(half, targets)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, F.binary_cross_entropy_with_logits(half.float(), targets))
    value.backward()
    assert half.grad.dtype == torch.float16


# ---------------------------------------------------------------------------------- pairwise hinge
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_pairwise_hinge_equals_multilabel_margin_loss(reduction, dtype):
    logits, targets = random_inputs(batch_size=8, n_labels=50, seed=3, dtype=dtype, positive_rate=0.2)
    targets[0] = 0  # no positive
    targets[1] = 1  # no negative
    logits = logits.clone().requires_grad_(True)
    expected = torch.nn.MultiLabelMarginLoss(reduction=reduction)(logits, to_margin_format(targets))
    got = losses.pairwise_hinge(logits, targets, reduction=reduction)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got, expected, rtol=tolerance, atol=tolerance)
    (grad_got,) = torch.autograd.grad(got.sum(), logits)
    (grad_expected,) = torch.autograd.grad(expected.sum(), logits)
    torch.testing.assert_close(grad_got, grad_expected, rtol=tolerance, atol=tolerance)


def test_pairwise_hinge_with_ties_at_the_margin_equals_torch():
    # Integer logits make s_p == s_n + 1 happen often: the hinge is 0 there either way.
    generator = torch.Generator().manual_seed(5)
    logits = torch.randint(-3, 4, (16, 30), generator=generator).to(torch.float64)
    targets = (torch.rand(16, 30, generator=generator) < 0.3).to(torch.float64)
    expected = torch.nn.MultiLabelMarginLoss(reduction="none")(logits, to_margin_format(targets))
    torch.testing.assert_close(losses.pairwise_hinge(logits, targets, reduction="none"), expected)


# ---------------------------------------------------------------------------------- pairwise: naive references
@pytest.mark.parametrize(
    "fast, naive",
    [(losses.bp_mll, suite.naive_bp_mll), (losses.lsep, suite.naive_lsep),
     (losses.pairwise_hinge, suite.naive_pairwise_hinge), (losses.zlpr, suite.naive_zlpr)],
    ids=["bp_mll", "lsep", "pairwise_hinge", "zlpr"],
)
@settings(max_examples=10, derandomize=True, deadline=None)
@given(seed=st.integers(0, 2**16), n_labels=st.sampled_from([1, 2, 30, 200]), mask_rate=st.sampled_from([0.0, 0.5]))
def test_factorised_pairwise_losses_equal_naive_to_1e6_in_float64(fast, naive, seed, n_labels, mask_rate):
    case = suite.make_case(6, n_labels, seed, mask_rate=mask_rate, weighted=True, positive_rate=0.3)
    logits = case.logits.clone().requires_grad_(True)
    got = fast(logits, case.targets, case.weight, case.mask, reduction="none")
    expected = naive(logits, case.targets, case.weight, case.mask)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    grads = [torch.autograd.grad(v.sum(), logits)[0] for v in (got, expected)]
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------- focal, asymmetric
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("alpha, gamma", [(0.25, 2.0), (-1.0, 2.0), (0.5, 0.5), (0.75, 0.0)])
def test_focal_equals_torchvision_formula(reduction, alpha, gamma):
    logits, targets = random_inputs()
    expected = torchvision_sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction)
    torch.testing.assert_close(losses.focal(logits, targets, reduction=reduction, alpha=alpha, gamma=gamma), expected)
    module = losses.FocalLoss(reduction=reduction, alpha=alpha, gamma=gamma)
    torch.testing.assert_close(module(logits, targets), expected)


def test_focal_gamma_below_one_has_finite_gradient_at_extreme_logits():
    logits = torch.tensor([[1e4, -1e4, 30.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 1.0]])
    losses.focal(logits, targets, gamma=0.5).backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("gamma_pos, gamma_neg, clip", [(0.0, 4.0, 0.05), (1.0, 4.0, 0.05), (0.0, 2.0, 0.0), (0.5, 0.5, 0.2)])
def test_asymmetric_equals_official_code(gamma_pos, gamma_neg, clip):
    logits, targets = random_inputs()
    expected = official_asl(logits, targets, gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip).sum()
    got = losses.asymmetric(logits, targets, reduction="sum", gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("make", [
    lambda: losses.FocalLoss(alpha=None, gamma=0.0),
    lambda: losses.AsymmetricLoss(gamma_pos=0.0, gamma_neg=0.0, clip=0.0),
    lambda: losses.HierarchicalLoss(torch.zeros(7, 7, dtype=torch.bool)),
], ids=["focal", "asymmetric", "hierarchical"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_special_cases_equal_bce(make, reduction):
    logits, targets = random_inputs()
    module = make()
    module.reduction = reduction
    torch.testing.assert_close(module(logits, targets), F.binary_cross_entropy_with_logits(logits, targets, reduction=reduction))


# ---------------------------------------------------------------------------------- hierarchical
def test_hierarchy_pairs_closes_a_chain_and_adds_the_diagonal():
    chain = torch.zeros(4, 4, dtype=torch.bool)
    chain[0, 1] = chain[1, 2] = chain[2, 3] = True
    pairs = {tuple(p) for p in hierarchy_pairs(chain).T.tolist()}
    assert pairs == {(i, j) for i in range(4) for j in range(4) if j >= i}


def test_hierarchy_with_a_cycle_or_wrong_shape_is_rejected():
    cycle = torch.zeros(3, 3, dtype=torch.bool)
    cycle[0, 1] = cycle[1, 2] = cycle[2, 0] = True
    with pytest.raises(ValueError, match="acyclic"):
        losses.HierarchicalLoss(cycle)
    with pytest.raises(ValueError, match=r"square"):
        losses.HierarchicalLoss(torch.zeros(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="3 labels"):
        losses.HierarchicalLoss(heap_tree(3))(*random_inputs(2, 4))


def test_max_constraint_is_coherent_and_equals_dense_max():
    tree = heap_tree(15)
    probs = torch.rand(4, 15, generator=torch.Generator().manual_seed(0))
    constrained = max_constraint(probs, tree)
    parents, children = tree.nonzero().T
    assert bool((constrained[:, parents] >= constrained[:, children]).all())
    pairs = hierarchy_pairs(tree)
    dense = torch.zeros(15, 15)
    dense[pairs[0], pairs[1]] = 1.0
    torch.testing.assert_close(constrained, (dense[None] * probs[:, None, :]).amax(-1))
    # logits or probabilities: sigmoid commutes with the max
    logits = torch.logit(probs)
    torch.testing.assert_close(torch.sigmoid(max_constraint(logits, tree)), constrained)


def test_hierarchical_loss_at_1e4_is_finite_where_the_paper_code_is_not():
    tree = heap_tree(7)
    logits = torch.tensor([[1e4, -1e4, 1e4, -1e4, 1e4, -1e4, 1e4]], requires_grad=True)
    targets = torch.tensor([[0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0]])
    value = losses.hierarchical(logits, targets, hierarchy=tree)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    per_element = losses.hierarchical(logits.detach(), targets, reduction="none", hierarchy=tree)
    # label 3, a positive leaf at -1e4: loss 1e4; label 1, positive at -1e4 but with a positive
    # child (4) at +1e4: the max constraint lifts it, loss 0
    assert per_element[0, 3].item() == pytest.approx(1e4)
    assert per_element[0, 1].item() == 0.0


# ---------------------------------------------------------------------------------- wasserstein
def test_wasserstein_default_cost_equals_explicit_zero_one_cost():
    case = suite.make_case(5, 9, 0, mask_rate=0.2, weighted=True)
    zero_one = 1.0 - torch.eye(9, dtype=torch.float64)
    default = losses.wasserstein(case.logits, case.targets, case.weight, case.mask, reduction="none", tol=1e-12)
    explicit = losses.wasserstein(case.logits, case.targets, case.weight, case.mask, reduction="none",
                                  cost_matrix=zero_one, tol=1e-12)
    torch.testing.assert_close(default, explicit)


def test_wasserstein_tends_to_total_variation_as_epsilon_shrinks():
    logits, targets = random_inputs(4, 6, seed=2)
    targets[:, 0] = 1
    a = torch.softmax(logits, -1)
    b = targets / targets.sum(-1, keepdim=True)
    total_variation = 1 - torch.minimum(a, b).sum(-1)
    gaps = []
    for epsilon in (0.1, 0.02, 0.005):
        value = losses.wasserstein(logits, targets, reduction="none", epsilon=epsilon, max_iter=100000, tol=1e-12)
        gaps.append((value - total_variation).abs().max().item())
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.03


def test_wasserstein_chunks_rows_without_changing_values(monkeypatch):
    case = suite.make_case(7, 8, 1, mask_rate=0.3, weighted=True)
    whole = losses.wasserstein(case.logits, case.targets, case.weight, case.mask, reduction="none", tol=1e-12)
    monkeypatch.setattr(transport, "CHUNK_ELEMENTS", 1)  # one row per chunk
    chunked = losses.wasserstein(case.logits, case.targets, case.weight, case.mask, reduction="none", tol=1e-12)
    torch.testing.assert_close(chunked, whole)


def test_wasserstein_cost_matrix_must_match_labels():
    with pytest.raises(ValueError, match=r"cost_matrix.*\[5, 5\]"):
        losses.wasserstein(*random_inputs(2, 5), cost_matrix=torch.zeros(4, 4))
    with pytest.raises(ValueError, match="square"):
        losses.WassersteinLoss(cost_matrix=torch.zeros(4, 3))
    with pytest.raises(ValueError, match="epsilon"):
        losses.WassersteinLoss(epsilon=0.0)


# ---------------------------------------------------------------------------------- documented edge cases
def test_pairwise_losses_give_zero_for_rows_without_pairs():
    logits, targets = random_inputs(3, 6)
    targets[0], targets[1] = 0, 1
    for loss in (losses.bp_mll, losses.lsep, losses.pairwise_hinge, losses.wasserstein):
        values = loss(logits, targets, reduction="none")
        assert values[0].item() == 0.0, loss.__name__
        if loss is not losses.wasserstein:  # all-positive rows do have a transport target
            assert values[1].item() == 0.0, loss.__name__
        assert values[2].item() > 0.0, loss.__name__


def test_zlpr_without_positives_still_pushes_negatives_below_zero():
    logits = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    value = losses.zlpr(logits, torch.zeros(1, 3), reduction="none")
    torch.testing.assert_close(value, F.softplus(torch.logsumexp(logits, -1)))


def test_bp_mll_is_continued_linearly_beyond_exp_50():
    logits = torch.tensor([[-1e4, 1e4]], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    value = losses.bp_mll(logits, targets)
    threshold = ranking.BP_MLL_LINEAR_ABOVE
    assert value.item() == pytest.approx(math.exp(threshold) * (1 + 2e4 - threshold))
    value.backward()
    torch.testing.assert_close(logits.grad, torch.tensor([[-1.0, 1.0]], dtype=torch.float64) * math.exp(threshold))


@pytest.mark.parametrize("loss", [losses.sigmoid_f1, losses.soft_jaccard], ids=["sigmoid_f1", "soft_jaccard"])
def test_set_surrogates_on_rows_without_positives(loss):
    logits = torch.tensor([[1.0, -2.0, 0.5], [-1e4, -1e4, -1e4]], dtype=torch.float64, requires_grad=True)
    targets = torch.zeros(2, 3)
    values = loss(logits, targets, reduction="none")
    torch.testing.assert_close(values, torch.ones(2, dtype=torch.float64))  # F1 = 0 by convention
    (grad,) = torch.autograd.grad(values.sum(), logits)
    assert bool((grad == 0).all())
    smoothed = loss(logits, targets, reduction="none", smooth=1.0)
    fp = torch.sigmoid(logits.detach()).sum(-1)
    torch.testing.assert_close(smoothed, fp / (fp + 1))


def test_all_masked_batch_gives_zero_mean_and_zero_gradient():
    logits, targets = random_inputs(3, 4)
    mask = torch.zeros(3, 4, dtype=torch.bool)
    for name, cls in LOSSES.items():
        module = cls(heap_tree(4)) if name == "hierarchical" else cls()
        x = logits.clone().requires_grad_(True)
        value = module(x, targets, mask=mask)
        value.backward()
        assert value.item() == 0.0 and bool((x.grad == 0).all()), name


# ---------------------------------------------------------------------------------- registry, API
def test_get_loss_builds_configured_losses_and_names_unknown_ones():
    loss = get_loss("focal", gamma=1.0, reduction="sum")
    assert isinstance(loss, losses.FocalLoss) and loss.gamma == 1.0 and loss.reduction == "sum"
    with pytest.raises(ValueError, match="expected one of"):
        get_loss("nope")


def test_class_flags():
    assert {n for n, c in LOSSES.items() if c.decomposable} == {"bce", "focal", "asymmetric"}
    assert {n for n, c in LOSSES.items() if c.reduces_over == "elements"} == {"bce", "focal", "asymmetric", "hierarchical"}


def test_error_messages_name_row_and_label():
    logits, targets = random_inputs(3, 4)
    targets[2, 3] = 2
    with pytest.raises(ValueError, match=r"Expected `targets` to contain only 0 and 1, got 2.0 at row 2, label 3"):
        losses.lsep(logits, targets)
    with pytest.raises(ValueError, match=r"Expected `targets` with the shape of `logits` \[3, 4\], got \[3, 5\]"):
        losses.lsep(logits, torch.zeros(3, 5))


def test_validate_args_false_skips_value_checks_only():
    logits, targets = random_inputs(3, 4)
    targets[0, 0] = 2
    losses.BCELoss(validate_args=False)(logits, targets)  # no value check
    with pytest.raises(ValueError, match="shape"):
        losses.BCELoss(validate_args=False)(logits, targets[:, :2])


@pytest.mark.parametrize("module", [losses, losses_base, binary, ranking, set_surrogates, transport, hierarchy])
def test_docstring_examples(module):
    failures, _ = doctest.testmod(module, verbose=False)
    assert failures == 0


def test_wasserstein_kernel_and_log_domain_solvers_agree(monkeypatch):
    case = suite.make_case(5, 9, 3, mask_rate=0.2, weighted=True)
    cost = torch.rand(9, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 2.0  # offset costs
    kwargs = dict(reduction="none", cost_matrix=cost, epsilon=0.05, tol=1e-12, max_iter=100000)
    logits = case.logits.clone().requires_grad_(True)
    kernel = losses.wasserstein(logits, case.targets, case.weight, case.mask, **kwargs)
    (kernel_grad,) = torch.autograd.grad(kernel.sum(), logits)
    monkeypatch.setattr(transport, "KERNEL_MAX_EXPONENT", 0.0)  # force log-sum-exps
    log_domain = losses.wasserstein(logits, case.targets, case.weight, case.mask, **kwargs)
    (log_grad,) = torch.autograd.grad(log_domain.sum(), logits)
    torch.testing.assert_close(kernel, log_domain)
    torch.testing.assert_close(kernel_grad, log_grad)


def test_wasserstein_small_epsilon_uses_log_domain_and_stays_finite():
    logits, targets = random_inputs(3, 6, dtype=torch.float32)
    targets[:, 0] = 1
    logits.requires_grad_(True)
    value = losses.wasserstein(logits, targets, epsilon=1e-3, max_iter=2000)  # costs span 1000 epsilons
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("loss", [losses.bp_mll, losses.lsep, losses.zlpr], ids=["bp_mll", "lsep", "zlpr"])
def test_pair_sums_pass_gradients_to_weights(loss):
    case = suite.make_case(3, 6, 4, mask_rate=0.2, weighted=True, scale=1.0)
    weight = case.weight.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda w: loss(case.logits, case.targets, w, case.mask), (weight,))
