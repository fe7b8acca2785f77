"""The classifier-chain head (Dembczynski et al., ICML 2010), trained by teacher forcing."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from comorbid.distributions.chain import DEFAULT_BEAM_SIZE, ChainBernoulli
from comorbid.heads.base import Head, label_logits, log_odds


def frequency_order(labels: np.ndarray) -> np.ndarray:
    """Labels from the most to the least frequent (ties by index).

    Frequent labels first: the rare labels, whose own evidence is weakest, get to condition on
    the labels that are already well determined.
    """
    counts = labels.sum(0)
    return np.lexsort((np.arange(labels.shape[1]), -counts))


class ChainHead(Head):
    """u = W h + b; a learned [M, M] matrix of label-on-label weights along a label order.

    Args:
        input_dim: ``d``.
        n_labels: ``M``.
        order: ``"frequency"`` (default), ``"index"`` or an explicit permutation.
        beam_size: beam width of the mode search.
    """

    name = "chain"
    accepts_per_label = True

    def __init__(self, input_dim: int, n_labels: int, order="frequency", beam_size: int = DEFAULT_BEAM_SIZE):
        super().__init__(input_dim, n_labels, order=order, beam_size=beam_size)
        self.linear = nn.Linear(input_dim, n_labels)
        nn.init.zeros_(self.linear.weight)
        self.interactions = nn.Parameter(torch.zeros(n_labels, n_labels))
        initial = torch.arange(n_labels) if isinstance(order, str) else torch.as_tensor(order, dtype=torch.long)
        self.register_buffer("order", initial.clone())

    def forward(self, h: torch.Tensor) -> ChainBernoulli:
        return ChainBernoulli(label_logits(self.linear, h), self.interactions, self.order, beam_size=self.options["beam_size"])

    def prepare(self, labels: np.ndarray, label_names: list[str] | None = None) -> None:
        if self.options["order"] == "frequency":
            self.order.copy_(torch.as_tensor(frequency_order(labels)))
        with torch.no_grad():
            self.linear.bias.copy_(log_odds(labels))
