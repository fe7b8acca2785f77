r"""Ranking losses over (positive, negative) label pairs, computed without the ``[B, M, M]`` tensor.

For row ``b`` let ``P`` be its unmasked positive labels and ``N`` its unmasked negative labels.
The exponential pairwise sums factorise,

.. math::
    \sum_{p \in P}\sum_{n \in N} w_p w_n e^{s_n - s_p}
      = \Big(\sum_{p \in P} w_p e^{-s_p}\Big)\Big(\sum_{n \in N} w_n e^{s_n}\Big),

so BP-MLL and LSEP cost two log-sum-exps per row, O(M). The hinge is not a product, but after
sorting the positive scores a prefix sum gives each negative's total in O(log M), O(M log M) per
row. ``weight`` ``w`` enters each pair as ``w_p w_n`` (and each term of ZLPR as ``w_j``).

All four return ``[B]`` with ``reduction="none"`` and ``"mean"`` averages over rows with at least
one unmasked label (``B`` without a mask). A row without positives or without negatives has no
pair and contributes 0.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F

from comorbid.losses.base import Loss, LossInputs, Reduction, apply_loss, pair_logsumexp

#: BP-MLL's exp(u) is continued linearly, exp(T) (1 + u - T), above u = T, so that a row with
#: margins of 1e4 gives a finite value and gradient (exp(1e4) overflows every float dtype).
BP_MLL_LINEAR_ABOVE = 50.0


def _pair_sums(inputs: LossInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log sum_p w_p e^{-s_p}, log sum_n w_n e^{s_n})`` per row, ``[B]`` each (``-inf`` if empty)."""
    return pair_logsumexp(
        inputs.logits, inputs.positives, inputs.negatives, inputs.weight, partial=inputs.mask is not None
    )


# ---------------------------------------------------------------------------------- BP-MLL
def _exp_linear_above(u: torch.Tensor, threshold: float) -> torch.Tensor:
    """exp(u) for u <= threshold, exp(threshold) * (1 + u - threshold) above (C^1 at the joint)."""
    below = torch.exp(u.clamp(max=threshold))
    above = math.exp(threshold) * (1.0 + u - threshold)
    return torch.where(u > threshold, above, below)


def _bp_mll_rows(inputs: LossInputs) -> torch.Tensor:
    log_pos, log_neg = _pair_sums(inputs)
    n_pos = inputs.positives.sum(-1).clamp_min(1).to(log_pos.dtype)
    n_neg = inputs.negatives.sum(-1).clamp_min(1).to(log_pos.dtype)
    log_mean = log_pos + log_neg - torch.log(n_pos) - torch.log(n_neg)
    return _exp_linear_above(log_mean, BP_MLL_LINEAR_ABOVE)


def bp_mll(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    *,
    validate_args: bool = True,
) -> torch.Tensor:
    r"""BP-MLL pairwise exponential ranking loss (Zhang & Zhou, "Multilabel Neural Networks with
    Applications to Functional Genomics and Text Categorization", IEEE TKDE 18(10), 2006).

    .. math::
        \ell_b = \frac{1}{|P||N|} \sum_{p \in P} \sum_{n \in N} w_p w_n\, e^{-(s_p - s_n)}

    computed as ``exp(LSE_p(-s_p + log w_p) + LSE_n(s_n + log w_n) - log|P| - log|N|)``; O(M) per
    row. ``|P|, |N|`` count unmasked labels (not weights). Rows without positives or negatives
    give 0. Above ``exp(50)`` (margins far beyond any useful training) the exponential is
    continued linearly in the exponent so values and gradients stay finite at logits of 1e4; the
    gradient of BP-MLL grows like ``exp(margin)``, which float16 gradients cannot hold beyond
    margins of about 11.

    Args:
        logits: ``[B, M]``.
        targets: ``[B, M]`` 0/1.
        weight: broadcastable to ``[B, M]``; pair ``(p, n)`` is weighted ``w_p w_n``.
        mask: ``[B, M]`` bool, ``True`` where the label takes part.
        reduction: ``"none"`` (``[B]``) | ``"mean"`` (over rows with an unmasked label) | ``"sum"``.
    """
    return apply_loss(_bp_mll_rows, logits, targets, weight, mask, reduction, "rows", validate_args=validate_args)


class BPMLLLoss(Loss):
    """Module twin of :func:`bp_mll`."""

    name = "bp_mll"
    reduces_over = "rows"

    def compute(self, inputs: LossInputs) -> torch.Tensor:
        return _bp_mll_rows(inputs)


# ---------------------------------------------------------------------------------- LSEP
def _lsep_rows(inputs: LossInputs) -> torch.Tensor:
    log_pos, log_neg = _pair_sums(inputs)
    return F.softplus(log_pos + log_neg)


def lsep(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    *,
    validate_args: bool = True,
) -> torch.Tensor:
    r"""Log-sum-exp pairwise loss, LSEP (Li, Song & Luo, "Improving Pairwise Ranking for
    Multi-label Image Classification", CVPR 2017).

    .. math::
        \ell_b = \log\Big(1 + \sum_{p \in P}\sum_{n \in N} w_p w_n\, e^{s_n - s_p}\Big)
               = \operatorname{softplus}\big(\mathrm{LSE}_p(-s_p + \log w_p) + \mathrm{LSE}_n(s_n + \log w_n)\big)

    O(M) per row, exact (the paper samples pairs; we need not). Unnormalised, as in the paper.
    Rows without positives or negatives give 0. Finite at logits of 1e4 (``softplus`` is linear
    there).

    Args:
        logits, targets, weight, mask, reduction: as for :func:`bp_mll`.
    """
    return apply_loss(_lsep_rows, logits, targets, weight, mask, reduction, "rows", validate_args=validate_args)


class LSEPLoss(Loss):
    """Module twin of :func:`lsep`."""

    name = "lsep"
    reduces_over = "rows"

    def compute(self, inputs: LossInputs) -> torch.Tensor:
        return _lsep_rows(inputs)


# ---------------------------------------------------------------------------------- ZLPR
def _zlpr_rows(inputs: LossInputs) -> torch.Tensor:
    log_pos, log_neg = _pair_sums(inputs)
    return F.softplus(log_neg) + F.softplus(log_pos)


def zlpr(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    *,
    validate_args: bool = True,
) -> torch.Tensor:
    r"""ZLPR, multi-label softmax cross-entropy with a zero threshold (Su, Zhu, Murtadha, Pan, Wen
    & Liu, "ZLPR: A Novel Loss for Multi-label Classification", arXiv:2208.02955, 2022).

    .. math::
        \ell_b = \log\Big(1 + \sum_{n \in N} w_n e^{s_n}\Big) + \log\Big(1 + \sum_{p \in P} w_p e^{-s_p}\Big)

    Every positive should score above 0 and every negative below, so 0 is the decision
    threshold. O(M) per row. An empty sum gives ``log 1 = 0``: a row without positives still
    pushes its negatives below 0.

    Args:
        logits, targets, weight, mask, reduction: as for :func:`bp_mll`; ``weight`` multiplies
            each label's term inside its sum.
    """
    return apply_loss(_zlpr_rows, logits, targets, weight, mask, reduction, "rows", validate_args=validate_args)


class ZLPRLoss(Loss):
    """Module twin of :func:`zlpr`."""

    name = "zlpr"
    reduces_over = "rows"

    def compute(self, inputs: LossInputs) -> torch.Tensor:
        return _zlpr_rows(inputs)


# ---------------------------------------------------------------------------------- hinge
def _pairwise_hinge_rows(inputs: LossInputs, margin: float) -> torch.Tensor:
    s = inputs.logits
    w = inputs.weight_or_ones()
    positives, negatives = inputs.positives, inputs.negatives
    zero = torch.zeros((), dtype=s.dtype, device=s.device)
    # Sort each row's positive scores ascending; non-positives go to the end as +inf.
    sorted_scores, order = torch.where(positives, s, torch.full_like(s, float("inf"))).sort(dim=-1)
    is_positive = positives.gather(-1, order)
    sorted_weight = torch.where(is_positive, w.gather(-1, order), zero)
    finite_scores = torch.where(is_positive, sorted_scores, zero)
    prefix_weight = F.pad(sorted_weight.cumsum(-1), (1, 0))  # [B, M+1]
    prefix_weighted_score = F.pad((sorted_weight * finite_scores).cumsum(-1), (1, 0))
    # For negative n the active positives are those with s_p < s_n + margin: the first `count`.
    thresholds = s + margin
    count = torch.searchsorted(sorted_scores.detach().contiguous(), thresholds.detach().contiguous())
    per_negative = (thresholds * prefix_weight.gather(-1, count)
                    - prefix_weighted_score.gather(-1, count))
    per_negative = torch.where(negatives, w * per_negative, zero)
    n_labels = inputs.keep.sum(-1).clamp_min(1).to(s.dtype)
    return per_negative.sum(-1) / n_labels


def pairwise_hinge(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    *,
    margin: float = 1.0,
    validate_args: bool = True,
) -> torch.Tensor:
    r"""Pairwise ranking hinge loss, the semantics of :class:`torch.nn.MultiLabelMarginLoss`
    on 0/1 targets (Weston, Watkins, "Support vector machines for multi-class pattern
    recognition", ESANN 1999; Crammer & Singer, "A family of additive online algorithms for
    category ranking", JMLR 2003).

    .. math::
        \ell_b = \frac{1}{M_b} \sum_{p \in P}\sum_{n \in N} w_p w_n \max(0,\ \text{margin} - (s_p - s_n))

    with ``M_b`` the number of unmasked labels of the row (``M`` without a mask, as torch divides
    by the number of classes). Exact in O(M log M) per row: for each negative, the active
    positives are those with ``s_p < s_n + margin``, a prefix of the sorted positive scores, and
    their total is ``(s_n + margin) W_k - S_k`` with prefix sums ``W_k`` of weights and ``S_k`` of
    weighted scores, ``k`` found by ``searchsorted``. The prefix-sum difference loses about
    ``eps * sum |s_p|`` to cancellation: negligible in float64, ~1e-3 relative at logits of 1e4 in
    float32.

    Args:
        logits, targets, weight, mask, reduction: as for :func:`bp_mll`.
        margin: the hinge margin (1 in torch).
    """
    compute = partial(_pairwise_hinge_rows, margin=margin)
    return apply_loss(compute, logits, targets, weight, mask, reduction, "rows", validate_args=validate_args)


class PairwiseHingeLoss(Loss):
    """Module twin of :func:`pairwise_hinge`."""

    name = "pairwise_hinge"
    reduces_over = "rows"

    def __init__(self, weight=None, reduction: Reduction = "mean", *, margin: float = 1.0, validate_args=True):
        super().__init__(weight, reduction, validate_args=validate_args)
        self.margin = margin

    def hyperparameters(self) -> dict:
        return {"margin": self.margin}

    def compute(self, inputs: LossInputs) -> torch.Tensor:
        return _pairwise_hinge_rows(inputs, self.margin)
