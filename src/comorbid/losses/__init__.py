"""Multi-label losses: a functional form and an ``nn.Module`` twin for each.

Every loss takes ``(logits [B, M], targets [B, M])`` with optional ``weight`` (broadcastable to
``[B, M]``) and ``mask`` (``[B, M]`` bool, ``True`` where a label takes part), and a
``reduction`` as :class:`torch.nn.BCEWithLogitsLoss`. See ``docs/losses.md`` for each loss's
equation, defaults, reference and edge cases, and :mod:`comorbid.losses.base` for the template.

Example:
    >>> import torch
    >>> from comorbid.losses import get_loss, lsep
    >>> logits, targets = torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[1, 0, 1]])
    >>> loss = get_loss("lsep")
    >>> bool(torch.isclose(loss(logits, targets), lsep(logits, targets)))
    True
"""

from __future__ import annotations

from comorbid.losses.base import Loss, LossInputs, pair_logsumexp
from comorbid.losses.binary import AsymmetricLoss, BCELoss, FocalLoss, asymmetric, bce, focal
from comorbid.losses.hierarchy import HierarchicalLoss, hierarchical, hierarchy_pairs, max_constraint
from comorbid.losses.ranking import (
    BPMLLLoss,
    LSEPLoss,
    PairwiseHingeLoss,
    ZLPRLoss,
    bp_mll,
    lsep,
    pairwise_hinge,
    zlpr,
)
from comorbid.losses.set_surrogates import SigmoidF1Loss, SoftJaccardLoss, sigmoid_f1, soft_jaccard
from comorbid.losses.transport import WassersteinLoss, wasserstein

#: Every loss, by name. Adding a loss = one module + one line here + one example in
#: ``tests/test_losses.py``'s ``EXAMPLES`` (``tests/test_registries.py`` fails without one), which
#: runs it through :mod:`comorbid.testing.losses`.
LOSSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (
        BCELoss,
        FocalLoss,
        AsymmetricLoss,
        BPMLLLoss,
        LSEPLoss,
        ZLPRLoss,
        PairwiseHingeLoss,
        SigmoidF1Loss,
        SoftJaccardLoss,
        WassersteinLoss,
        HierarchicalLoss,
    )
}


def get_loss(name: str, **kwargs) -> Loss:
    """The loss ``name`` from :data:`LOSSES`, constructed with ``kwargs``.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    try:
        cls = LOSSES[name]
    except KeyError:
        raise ValueError(f"Unknown loss {name!r}; expected one of {sorted(LOSSES)}") from None
    return cls(**kwargs)


__all__ = [
    "LOSSES",
    "AsymmetricLoss",
    "BCELoss",
    "BPMLLLoss",
    "FocalLoss",
    "HierarchicalLoss",
    "LSEPLoss",
    "Loss",
    "LossInputs",
    "PairwiseHingeLoss",
    "SigmoidF1Loss",
    "SoftJaccardLoss",
    "WassersteinLoss",
    "ZLPRLoss",
    "asymmetric",
    "bce",
    "bp_mll",
    "focal",
    "get_loss",
    "hierarchical",
    "hierarchy_pairs",
    "lsep",
    "max_constraint",
    "pair_logsumexp",
    "pairwise_hinge",
    "sigmoid_f1",
    "soft_jaccard",
    "wasserstein",
    "zlpr",
]
