"""The loss conformance suite (comorbid.testing.losses) over every registered loss.

EXAMPLES names every loss once, with a factory ``n_labels -> Loss``, its functional twin (with
the same hyperparameters) and a reference written from the paper (naive O(M^2) pairwise sums,
torchvision's focal formula, the official ASL and C-HMCNN code, POT for the transport loss).
Comparisons with PyTorch built-ins are in test_losses_builtins.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import ot
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comorbid import losses
from comorbid.losses import hierarchy_pairs
from comorbid.testing import losses as suite

# ---------------------------------------------------------------------------------- label structures


def heap_tree(n_labels: int) -> torch.Tensor:
    """Parent -> child relation of a binary heap: label j's parent is (j - 1) // 2."""
    relation = torch.zeros(n_labels, n_labels, dtype=torch.bool)
    for child in range(1, n_labels):
        relation[(child - 1) // 2, child] = True
    return relation


def heap_tree_distance(n_labels: int) -> torch.Tensor:
    """Number of tree edges between labels of :func:`heap_tree`, scaled to [0, 1]."""

    def path_to_root(j):
        path = [j]
        while j > 0:
            j = (j - 1) // 2
            path.append(j)
        return path

    distance = torch.zeros(n_labels, n_labels, dtype=torch.float64)
    for i in range(n_labels):
        for j in range(n_labels):
            a, b = path_to_root(i), path_to_root(j)
            common = len(set(a) & set(b))
            distance[i, j] = (len(a) - common) + (len(b) - common)
    return distance / distance.max().clamp_min(1)


def closure_matrix(n_labels: int) -> torch.Tensor:
    pairs = hierarchy_pairs(heap_tree(n_labels))
    dense = torch.zeros(n_labels, n_labels, dtype=torch.bool)
    dense[pairs[0], pairs[1]] = True
    return dense


# ---------------------------------------------------------------------------------- references
def _keep_and_weight(logits, weight, mask):
    keep = torch.ones_like(logits, dtype=torch.bool) if mask is None else mask
    w = torch.ones_like(logits) if weight is None else weight
    return keep, w


def reference_bce(logits, targets, weight=None, mask=None):
    keep, w = _keep_and_weight(logits, weight, mask)
    loss = F.binary_cross_entropy_with_logits(logits, targets, weight=w, reduction="none")
    return torch.where(keep, loss, 0.0)


def torchvision_sigmoid_focal_loss(inputs, targets, alpha: float = 0.25, gamma: float = 2, reduction: str = "none"):
    """torchvision.ops.sigmoid_focal_loss (torchvision 0.20), copied: torchvision is not installed."""
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


def reference_focal(logits, targets, weight=None, mask=None):
    keep, w = _keep_and_weight(logits, weight, mask)
    return torch.where(keep, w * torchvision_sigmoid_focal_loss(logits, targets), 0.0)


def official_asl(x, y, gamma_neg=4, gamma_pos=0, clip=0.05, eps=1e-8):
    """AsymmetricLoss.forward of github.com/Alibaba-MIIL/ASL (src/loss_functions/losses.py),
    per element (the original returns ``-loss.sum()``)."""
    x_sigmoid = torch.sigmoid(x)
    xs_pos = x_sigmoid
    xs_neg = 1 - x_sigmoid
    if clip is not None and clip > 0:
        xs_neg = (xs_neg + clip).clamp(max=1)
    los_pos = y * torch.log(xs_pos.clamp(min=eps))
    los_neg = (1 - y) * torch.log(xs_neg.clamp(min=eps))
    loss = los_pos + los_neg
    if gamma_neg > 0 or gamma_pos > 0:
        pt0 = xs_pos * y
        pt1 = xs_neg * (1 - y)
        pt = pt0 + pt1
        one_sided_gamma = gamma_pos * y + gamma_neg * (1 - y)
        one_sided_w = torch.pow(1 - pt, one_sided_gamma)
        loss *= one_sided_w
    return -loss


def reference_asymmetric(logits, targets, weight=None, mask=None):
    keep, w = _keep_and_weight(logits, weight, mask)
    return torch.where(keep, w * official_asl(logits, targets), 0.0)


def pot_wasserstein(logits, targets, weight=None, mask=None, *, cost_matrix, epsilon):
    """Row by row with POT: ``ot.solve(C[kept, positives], a, b, reg=epsilon, reg_type="KL")``,
    differentiated by autodiff through POT's iterations."""
    keep, w = _keep_and_weight(logits, weight, mask)
    keep = keep & (w > 0)
    values = []
    for row in range(logits.shape[0]):
        kept = keep[row].nonzero().flatten()
        positive = (keep[row] & (targets[row] == 1)).nonzero().flatten()
        if len(positive) == 0:
            values.append(logits[row].sum() * 0.0)
            continue
        a = torch.softmax(logits[row, kept] + torch.log(w[row, kept]), dim=0)
        b = w[row, positive] / w[row, positive].sum()
        costs = cost_matrix[kept][:, positive]
        result = ot.solve(costs, a, b, reg=epsilon, reg_type="KL", max_iter=100000, tol=1e-14)
        values.append(result.value)
    return torch.stack(values)


# ---------------------------------------------------------------------------------- examples
@dataclass(frozen=True)
class Example:
    name: str
    make: Callable[[int], losses.Loss]
    functional: Callable
    reference: Callable
    #: the functional's hyperparameters for n_labels (a label structure needs n_labels)
    hyperparameters: Callable[[int], dict] = lambda n_labels: {}

    def __repr__(self):
        return self.name


# Tight solver settings so that Sinkhorn's stopping point is not what the checks see.
SINKHORN = {"epsilon": 0.1, "tol": 1e-13, "max_iter": 20000}

EXAMPLES = [
    Example("bce", lambda m: losses.BCELoss(), losses.bce, reference_bce),
    Example("focal", lambda m: losses.FocalLoss(), losses.focal, reference_focal),
    Example("asymmetric", lambda m: losses.AsymmetricLoss(), losses.asymmetric, reference_asymmetric),
    Example("bp_mll", lambda m: losses.BPMLLLoss(), losses.bp_mll, suite.naive_bp_mll),
    Example("lsep", lambda m: losses.LSEPLoss(), losses.lsep, suite.naive_lsep),
    Example("zlpr", lambda m: losses.ZLPRLoss(), losses.zlpr, suite.naive_zlpr),
    Example("pairwise_hinge", lambda m: losses.PairwiseHingeLoss(), losses.pairwise_hinge, suite.naive_pairwise_hinge),
    Example("sigmoid_f1", lambda m: losses.SigmoidF1Loss(), losses.sigmoid_f1, suite.naive_sigmoid_f1),
    Example("soft_jaccard", lambda m: losses.SoftJaccardLoss(), losses.soft_jaccard, suite.naive_soft_jaccard),
    Example(
        "wasserstein",
        lambda m: losses.WassersteinLoss(cost_matrix=heap_tree_distance(m), **SINKHORN),
        losses.wasserstein,
        lambda logits, targets, weight, mask: pot_wasserstein(
            logits, targets, weight, mask, cost_matrix=heap_tree_distance(logits.shape[1]), epsilon=SINKHORN["epsilon"]
        ),
        lambda m: {"cost_matrix": heap_tree_distance(m), **SINKHORN},
    ),
    Example(
        "hierarchical",
        lambda m: losses.HierarchicalLoss(heap_tree(m)),
        losses.hierarchical,
        lambda logits, targets, weight, mask: suite.naive_hierarchical(
            logits, targets, weight, mask, hierarchy=closure_matrix(logits.shape[1])
        ),
        lambda m: {"hierarchy": heap_tree(m)},
    ),
]

parametrize = pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])

cases = st.builds(
    suite.make_case,
    batch_size=st.integers(1, 4),
    n_labels=st.integers(2, 7),
    seed=st.integers(0, 2**16),
    positive_rate=st.sampled_from([0.0, 0.3, 0.6, 1.0]),
    mask_rate=st.sampled_from([0.0, 0.3, 0.7]),
    weighted=st.booleans(),
)
property_settings = settings(
    max_examples=12, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# ---------------------------------------------------------------------------------- fixed inputs
@parametrize
def test_gradcheck(example):
    suite.check_gradcheck(example.make)


@parametrize
def test_extreme_logits(example):
    suite.check_extreme_logits(example.make)


@parametrize
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_half_precision(example, dtype):
    suite.check_half_precision(example.make, dtype)


@parametrize
def test_rows_without_positives_or_negatives(example):
    suite.check_rows_without_positives_or_negatives(example.make)


@parametrize
def test_invalid_inputs(example):
    suite.check_invalid_inputs(example.make)


# ---------------------------------------------------------------------------------- drawn inputs
@parametrize
@property_settings
@given(case=cases)
def test_matches_reference(example, case):
    suite.check_matches_reference(example.make, example.reference, case, rtol=1e-6, atol=1e-6)


@parametrize
@property_settings
@given(case=cases, seed=st.integers(0, 1000))
def test_permutation_equivariance(example, case, seed):
    suite.check_permutation_equivariance(example.make, case, seed)


@parametrize
@property_settings
@given(case=cases)
def test_weight_ones_equals_no_weight(example, case):
    suite.check_weight_ones(example.make, case)


@parametrize
@property_settings
@given(case=cases)
def test_reductions(example, case):
    suite.check_reductions(example.make, case)


@parametrize
@property_settings
@given(case=cases)
def test_all_masked_rows(example, case):
    suite.check_all_masked_rows(example.make, case)


@parametrize
@property_settings
@given(case=cases, seed=st.integers(0, 1000))
def test_mask_takes_no_part(example, case, seed):
    suite.check_mask_takes_no_part(example.make, case, seed)


@parametrize
@property_settings
@given(case=cases)
def test_mask_is_deletion(example, case):
    suite.check_mask_is_deletion(example.make, case)


@parametrize
@property_settings
@given(case=cases)
def test_functional_twin(example, case):
    hyper = example.hyperparameters(case.shape[1])
    suite.check_functional_twin(example.make, partial(example.functional, **hyper), case)


def test_run_conformance_passes_for_a_plugin_and_fails_for_a_broken_one():
    suite.run_conformance(lambda m: losses.LSEPLoss(), functional=losses.lsep, reference=suite.naive_lsep, seeds=range(1))

    class Broken(losses.LSEPLoss):  # ignores the mask
        name = "broken"

        def forward(self, logits, targets, *, weight=None, mask=None):
            return super().forward(logits, targets, weight=weight)

    with pytest.raises(AssertionError):
        suite.run_conformance(lambda m: Broken(), seeds=range(1))
