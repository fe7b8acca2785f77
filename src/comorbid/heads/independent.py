"""The independent head: one logit per label, binary cross-entropy (or any label loss)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from comorbid.distributions.independent import IndependentBernoulli
from comorbid.heads.base import Head, log_odds


class IndependentHead(Head):
    """logits = W h + b; p(y | x) = prod_j Bernoulli(y_j; sigmoid(logit_j)).

    Args:
        input_dim: ``d``.
        n_labels: ``M``.
        loss: training objective on the logits, a name from ``comorbid.losses`` (default the
            joint negative log-likelihood, i.e. binary cross-entropy summed over labels).
        loss_options: keyword arguments for that loss.
    """

    name = "independent"

    def __init__(self, input_dim: int, n_labels: int, loss: str | None = None, loss_options: dict | None = None):
        super().__init__(input_dim, n_labels, loss=loss, loss_options=loss_options or {})
        self.linear = nn.Linear(input_dim, n_labels)
        nn.init.zeros_(self.linear.weight)
        self._loss = None
        if loss is not None:
            from comorbid.losses import get_loss  # the loss zoo is optional for this head

            self._loss = get_loss(loss, **(loss_options or {}))

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h)

    def forward(self, h: torch.Tensor) -> IndependentBernoulli:
        return IndependentBernoulli(self.logits(h))

    def nll(self, h, y, sample_weight=None):
        if self._loss is None:
            return super().nll(h, y, sample_weight)
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported together with a custom loss")
        return self._loss(self.logits(h), y)

    def prepare(self, labels: np.ndarray) -> None:
        with torch.no_grad():
            self.linear.bias.copy_(log_odds(labels))
