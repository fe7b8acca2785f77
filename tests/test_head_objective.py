"""Every head's training loss against brute-force enumeration of all 2^M label sets, and the
distributions' one argument-validation path (``arg_shapes``, ``arg_constraints``, ``support``)."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import Distribution

from comorbid.distributions import (
    BernoulliMixture,
    ChainBernoulli,
    ChainEnsemble,
    IndependentBernoulli,
    IsingLabels,
    LabelPowerset,
    all_label_sets,
)
from comorbid.distributions.base import JointLabelDistribution
from comorbid.distributions.nonempty import NonEmpty
from comorbid.heads import HEADS, Head

pytestmark = pytest.mark.usefixtures("float64")

M, D, B = 4, 3, 7

#: (head name, options, the objective's kind: "nll", "pseudo" or "chains")
HEAD_CASES = [
    ("independent", {}, "nll"),
    ("chain", {}, "nll"),
    ("chain", {"parents": 1}, "nll"),
    ("chain-ensemble", {"n_orders": 3}, "chains"),
    ("chain-ensemble", {"n_orders": 2, "objective": "mixture"}, "nll"),
    ("mixture", {"n_components": 3}, "nll"),
    ("powerset", {}, "nll"),
    ("ising", {}, "nll"),
    ("ising", {"objective": "pseudo-likelihood"}, "pseudo"),
    ("bagging", {"base": "chain", "members": 2}, "members"),
]


def _data(nonempty: bool, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    h = torch.randn(B, D, generator=generator, dtype=torch.float64)
    y = (torch.rand(B, M, generator=generator, dtype=torch.float64) < 0.4).double()
    y[0] = 0.0
    y[0, 1] = 1.0  # a lone label: its pseudo-likelihood factor is 1 given y != 0
    if not nonempty:
        y[1] = 0.0  # the empty set, only where it can happen
    else:
        y[y.sum(1) == 0, 2] = 1.0
    weights = torch.rand(B, generator=generator, dtype=torch.float64) + 0.1
    return h, y, weights


def _head(name, options, y, seed=0):
    head = HEADS[name](D, M, **options)
    head.prepare(y.numpy().astype(np.int8), [f"L{j}" for j in range(M)])
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # away from the initial values, so that every part matters
        for parameter in head.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return head


def _brute_probs(dist: JointLabelDistribution, nonempty: bool) -> torch.Tensor:
    """``[B, 2^M]`` probabilities of every set (row i of ``all_label_sets``), normalised by
    summing them, and conditioned on y != 0 by zeroing the empty set and summing again."""
    sets = all_label_sets(M, dtype=torch.float64)
    with torch.no_grad():
        probs = dist.log_prob(sets[:, None, :].expand(-1, B, -1)).T.exp()
    if nonempty:
        probs = probs.clone()
        probs[:, 0] = 0.0
    return probs / probs.sum(-1, keepdim=True)


def _index(y: torch.Tensor) -> torch.Tensor:
    return (y * 2 ** torch.arange(M, dtype=y.dtype)).sum(-1).long()


def _brute_nll(dist, y, nonempty):
    probs = _brute_probs(dist, nonempty)
    return -probs[torch.arange(B), _index(y)].log()


def _brute_pseudo(dist, y, nonempty):
    """-sum_j log p(y_j | y_-j) from the enumerated (conditioned) probabilities."""
    probs = _brute_probs(dist, nonempty)
    rows = torch.arange(B)
    own = probs[rows, _index(y)]
    total = torch.zeros(B, dtype=torch.float64)
    for j in range(M):
        flipped = y.clone()
        flipped[:, j] = 1.0 - flipped[:, j]
        total -= (own / (own + probs[rows, _index(flipped)])).log()
    return total


def _brute_row_losses(head, kind, h, y, nonempty):
    if kind == "members":
        return torch.stack([_brute_row_losses(m, "nll", h, y, nonempty) for m in head.members]).mean(0)
    dist = head(h)
    if kind == "chains":
        return sum(_brute_nll(chain, y, nonempty) for chain in dist.chains)
    if kind == "pseudo":
        return _brute_pseudo(dist, y, nonempty)
    return _brute_nll(dist, y, nonempty)


@pytest.mark.parametrize("nonempty", [False, True])
@pytest.mark.parametrize(("name", "options", "kind"), HEAD_CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_training_loss_is_the_weighted_mean_nll_of_the_distribution(name, options, kind, nonempty):
    h, y, weights = _data(nonempty)
    head = _head(name, options, y)
    head.nonempty = nonempty
    want = _brute_row_losses(head, kind, h, y, nonempty)
    assert torch.isfinite(want).all()
    torch.testing.assert_close(head.nll(h, y), want.mean())
    torch.testing.assert_close(head.nll(h, y, weights), (want * weights).sum() / weights.sum())
    if kind != "members":  # a bagged head's objective is its members' mean, not its mixture's
        torch.testing.assert_close(head.row_losses(h, y), want)


@pytest.mark.parametrize(("name", "options", "kind"), HEAD_CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_nonempty_changes_the_training_loss_of_every_head(name, options, kind):
    """The promise of heads/base.py: conditioning on y != 0 applies in training, for every head
    (a powerset head prepared without the empty set is the exception: P(y != 0) = 1)."""
    h, y, _ = _data(nonempty=True)
    head = _head(name, options, y)
    plain = head.nll(h, y)
    head.nonempty = True
    conditioned = head.nll(h, y)
    if name == "powerset":
        torch.testing.assert_close(conditioned, plain)
    else:
        assert conditioned < plain - 1e-6


def test_the_independent_heads_custom_loss_goes_through_nll_and_ignores_nonempty():
    h, y, weights = _data(nonempty=True)
    head = _head("independent", {"loss": "focal"}, y)
    plain = head.nll(h, y, weights)
    head.nonempty = True
    torch.testing.assert_close(head.nll(h, y, weights), plain)
    assert not torch.allclose(plain, Head.nll(head, h, y, weights))  # focal, not the NLL


def test_training_loss_uses_the_calibrated_temperature():
    h, y, _ = _data(nonempty=True)
    head = _head("chain-ensemble", {"n_orders": 2}, y)
    head.nonempty, head.temperature = True, 2.0
    want = sum(-NonEmpty(chain.tempered(2.0)).log_prob(y) for chain in head(h).chains)
    torch.testing.assert_close(head.row_losses(h, y), want)


# ------------------------------------------------------------------ conditional log-probabilities
@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "nonempty"])
def test_ising_conditionals_equal_the_generic_ones_from_log_prob(wrap):
    generator = torch.Generator().manual_seed(3)
    dist = IsingLabels(torch.randn(B, M, generator=generator, dtype=torch.float64) - 1.0,
                       torch.randn(M, M, generator=generator, dtype=torch.float64))
    dist = NonEmpty(dist) if wrap else dist
    _, y, _ = _data(nonempty=wrap)
    # the base class's exact formula from log_prob of y and its one-label flips
    want = JointLabelDistribution.conditional_log_probs(dist, y)
    torch.testing.assert_close(dist.conditional_log_probs(y), want)
    if wrap:
        assert dist.conditional_log_probs(y)[0, 1] == 0.0  # the lone label of row 0 is certain
        assert dist.pseudo_log_prob(torch.zeros(M)).eq(-math.inf).all()


# ------------------------------------------------------------------ argument validation
def _nan(shape, where=(0, 0)):
    value = torch.zeros(shape, dtype=torch.float64)
    value[where] = math.nan
    return value


BAD_ARGUMENTS = [
    (lambda: IndependentBernoulli(_nan((2, 3), (1, 2))),
     r"^Expected `logits` of IndependentBernoulli to be real numbers \(not NaN\), got nan at \[1, 2\]$"),
    (lambda: ChainBernoulli(torch.zeros(2, 3), torch.zeros(3, 3), order=torch.tensor([0, 2, 2])),
     r"^Expected `order` of ChainBernoulli to be a permutation of 0\.\.M-1, got \[0, 2, 2\]$"),
    (lambda: ChainBernoulli(torch.zeros(2, 3), _nan((3, 3), (2, 0))),
     r"`interactions` of ChainBernoulli to be real numbers \(not NaN\), got nan at \[2, 0\]"),
    (lambda: ChainBernoulli(torch.zeros(2, 3), torch.zeros(3, 1), parents=torch.tensor([[3], [0], [2]])),
     r"`parents` of ChainBernoulli to be earlier chain positions .* got 2 at t=2"),
    (lambda: ChainEnsemble(torch.zeros(2, 2, 3), torch.zeros(2, 3, 3), torch.tensor([[0, 1, 2], [1, 1, 0]])),
     r"^Expected `orders` of ChainEnsemble to be a permutation of 0\.\.M-1, got \[\[0, 1, 2\], \[1, 1, 0\]\]$"),
    (lambda: BernoulliMixture(_nan((2, 3)), torch.zeros(2, 3, 4)),
     r"`mixing_logits` of BernoulliMixture to be real numbers"),
    (lambda: IsingLabels(torch.zeros(2, 3), _nan((2, 3, 3), (1, 0, 2))),
     r"`couplings` of IsingLabels to be real numbers \(not NaN\), got nan at \[1, 0, 2\]"),
    (lambda: LabelPowerset(torch.zeros(1, 3), torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])),
     r"^Expected `label_sets` of LabelPowerset to be distinct label sets of 0/1, got row 2 repeating row 0$"),
    (lambda: LabelPowerset(torch.zeros(1, 2), torch.tensor([[0.0, 1.0], [2.0, 0.0]])),
     r"label_sets` of LabelPowerset to be distinct label sets of 0/1, got 2\.0 at \[1, 0\]$"),
]


@pytest.mark.parametrize(("build", "message"), BAD_ARGUMENTS)
def test_bad_arguments_raise_a_validation_error_naming_them(build, message, monkeypatch):
    with pytest.raises(ValueError, match=message):
        build()
    # validate_args=None follows torch's global default: off, nothing is checked
    monkeypatch.setattr(Distribution, "_validate_args", False)
    build()


BAD_SHAPES = [
    (lambda v: IndependentBernoulli(torch.zeros(3), validate_args=v),
     r"^Expected `logits` of IndependentBernoulli of shape \[B, M\], got \(3,\)$"),
    (lambda v: ChainBernoulli(torch.zeros(2, 3), torch.zeros(3, 2), validate_args=v),
     r"^Expected `interactions` of ChainBernoulli of shape \[3, 3\] or \[2, 3, 3\], got \(3, 2\)$"),
    (lambda v: ChainBernoulli(torch.zeros(2, 3), torch.zeros(3, 3), order=torch.arange(4), validate_args=v),
     r"`order` of ChainBernoulli of shape \[3\], got \(4,\)"),
    (lambda v: IsingLabels(torch.zeros(2, 3), torch.zeros(2, 3), validate_args=v),
     r"`couplings` of IsingLabels of shape \[3, 3\] or \[2, 3, 3\], got \(2, 3\)"),
    (lambda v: BernoulliMixture(torch.zeros(2, 4), torch.zeros(2, 3, 5), validate_args=v),
     r"^Expected `mixing_logits` of BernoulliMixture of shape \[2, 3\], got \(2, 4\)$"),
    (lambda v: LabelPowerset(torch.zeros(2, 3), torch.zeros(4, 2), validate_args=v),
     r"`label_sets` of LabelPowerset of shape \[3, M\], got \(4, 2\)"),
    (lambda v: ChainEnsemble(torch.zeros(2, 2, 3), torch.zeros(2, 3, 3), torch.zeros(3, 3), validate_args=v),
     r"`orders` of ChainEnsemble of shape \[2, 3\], got \(3, 3\)"),
]


@pytest.mark.parametrize(("build", "message"), BAD_SHAPES)
@pytest.mark.parametrize("validate_args", [True, False])
def test_shapes_are_checked_even_without_validation(build, message, validate_args):
    with pytest.raises(ValueError, match=message):
        build(validate_args)


def test_validate_args_false_skips_the_value_checks_of_log_prob():
    dist = IndependentBernoulli(torch.zeros(2, 3), validate_args=False)
    dist.log_prob(torch.full((2, 3), 0.5))  # a relaxation, not a label set: not checked
    with pytest.raises(ValueError, match=r"^Expected label sets of 0/1, got 0\.5 at \[0, 0\]$"):
        IndependentBernoulli(torch.zeros(2, 3)).log_prob(torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=r"one per row of the batch\), got shape \(3, 3\)"):
        IndependentBernoulli(torch.zeros(2, 3)).log_prob(torch.zeros(3, 3))
    # derived distributions keep the flag
    assert not NonEmpty(dist)._validate_args and not dist.tempered(2.0)._validate_args
    assert NonEmpty(IndependentBernoulli(torch.zeros(2, 3)))._validate_args
