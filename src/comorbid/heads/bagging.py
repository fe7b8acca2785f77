"""Bagging: R heads of one kind, each trained on its own bootstrap sample of the training rows.

Breiman, "Bagging predictors", Machine Learning 24, 1996. Each member sees a sample of the rows
drawn with replacement (its own seed), so the members differ even where training is
deterministic (L-BFGS from a fixed start); the model predicts their uniform mixture
(:class:`comorbid.distributions.ensemble.UniformMixture`), every decoder then works on it as on
any joint distribution. The members share the encoder, which must have no trainable parameters
(the bag-of-words encoders, the sentence encoder without a hidden layer, the MLP encoder with
``hidden=[]``): :meth:`comorbid.model.MultiLabelModel.fit` trains the members one by one on
fixed features.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from comorbid.distributions.ensemble import UniformMixture
from comorbid.heads.base import Head


def bootstrap_rows(n_rows: int, member: int, seed: int) -> np.ndarray:
    """The row indices ``[n_rows]`` (with repeats) of one member's bootstrap sample."""
    return np.random.default_rng([seed, member]).integers(0, n_rows, n_rows)


class BaggedHead(Head):
    """``members`` heads of kind ``base`` with options ``base_options``; predicts their mixture.

    ``nonempty`` and ``temperature`` apply to each member (a mixture of conditional models), so
    setting them here sets every member's.
    """

    name = "bagging"
    #: The heads a member may be, by name: the package's one registry ``comorbid.heads.HEADS``,
    #: handed in by ``comorbid/heads/__init__.py`` when it builds it. (Importing it from here
    #: would be an import cycle: the registry lists this head too.)
    member_heads: ClassVar[Mapping[str, type[Head]]] = {}

    def __init__(self, input_dim: int, n_labels: int, base: str = "chain", members: int = 5,
                 base_options: dict[str, Any] | None = None):
        if members < 1:
            raise ValueError(f"Expected at least one ensemble member, got {members}")
        if base not in self.member_heads:
            raise ValueError(f"Unknown model {base!r}; expected one of: {', '.join(sorted(self.member_heads))}")
        super().__init__(input_dim, n_labels, base=base, members=members, base_options=dict(base_options or {}))
        head_cls = self.member_heads[base]
        self.accepts_per_label = head_cls.accepts_per_label
        self.members = nn.ModuleList(head_cls(input_dim, n_labels, **self.options["base_options"]) for _ in range(members))

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("nonempty", "temperature") and "members" in self._modules:
            for member in self.members:
                setattr(member, name, value)
        super().__setattr__(name, value)

    def forward(self, h: torch.Tensor) -> UniformMixture:
        return UniformMixture([member(h) for member in self.members])

    def distribution(self, h: torch.Tensor) -> UniformMixture:
        return UniformMixture([member.distribution(h) for member in self.members])

    def nll(self, h: torch.Tensor, y: torch.Tensor, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
        """The members' mean NLL (members have their own parameters, so minimising it trains each
        on all rows; bagging proper trains them one by one on bootstrap samples)."""
        return torch.stack([member.nll(h, y, sample_weight) for member in self.members]).mean()

    def prepare(self, labels: np.ndarray, label_names: list[str] | None = None) -> None:
        for member in self.members:
            member.prepare(labels, label_names)
