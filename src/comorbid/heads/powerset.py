"""The label-powerset head: a softmax over the label sets seen in training."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from comorbid.distributions.powerset import LabelPowerset
from comorbid.heads.base import Head, Linear


class PowersetHead(Head):
    """z = W h + b over the K distinct label sets of the training data (Tsoumakas & Katakis, 2007).

    The K sets are found by :meth:`prepare` (which sizes the layer and stores the sets, so a
    saved model rebuilds with ``n_sets`` from its options and the sets from its weights). Sets
    never seen in training have probability 0 (see :mod:`comorbid.distributions.powerset`).

    Args:
        input_dim: ``d``.
        n_labels: ``M``.
        n_sets: ``K``; set by :meth:`prepare`, given only when loading a saved head.
    """

    name = "powerset"
    # Per-label features [B, M, d] are not taken: a set's score needs one vector per document.

    def __init__(self, input_dim: int, n_labels: int, n_sets: int | None = None):
        super().__init__(input_dim, n_labels, n_sets=n_sets)
        self._build(n_sets or 0)

    def _build(self, n_sets: int) -> None:
        self.options["n_sets"] = n_sets or None
        # Before prepare() the layer is a placeholder (forward refuses to run): one output
        # rather than zero, which torch warns about.
        self.linear = Linear(self.input_dim, max(n_sets, 1))
        nn.init.zeros_(self.linear.weight)
        self.register_buffer("label_sets", torch.zeros(n_sets, self.n_labels))

    def forward(self, h: torch.Tensor) -> LabelPowerset:
        if not self.options["n_sets"]:
            raise RuntimeError("PowersetHead has no label sets yet: call prepare(labels) before using it")
        return LabelPowerset(self.linear(h), self.label_sets)

    def row_losses(self, h, y):
        """``-log p(y | x)``, refusing a label set the head was not prepared with (its loss
        would be infinite). With ``nonempty`` the training sets hold no empty set, so the
        conditioning divides by P(y != 0) = 1: the same loss, exactly."""
        per_row = super().row_losses(h, y)
        if torch.isinf(per_row).any():
            row = int(torch.isinf(per_row).nonzero()[0, 0])
            raise ValueError(
                f"Training row {row} has a label set that prepare() did not see; a powerset "
                "head can only learn the sets it was prepared with"
            )
        return per_row

    def prepare(self, labels: np.ndarray, label_names: list[str] | None = None) -> None:
        labels = np.asarray(labels)
        if labels.shape[0] == 0:
            raise ValueError("Expected at least one training row to find the label sets, got none")
        sets, counts = np.unique(labels.astype(np.int8), axis=0, return_counts=True)
        self._build(len(sets))
        with torch.no_grad():
            self.label_sets.copy_(torch.as_tensor(sets, dtype=self.label_sets.dtype))
            self.linear.bias.copy_(torch.as_tensor(np.log(counts / counts.sum()), dtype=self.linear.bias.dtype))
