"""The pairwise label CRF head (Ghamrawi & McCallum, CIKM 2005)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from comorbid.distributions.ising import DEFAULT_MAX_EXACT_LABELS, IsingLabels
from comorbid.heads.base import Head, Linear, label_logits, log_odds

OBJECTIVES = ("auto", "likelihood", "pseudo-likelihood")


class IsingHead(Head):
    """u = W h + b and learned couplings C; p(y|x) ∝ exp(u . y + sum_{j<k} C_jk y_j y_k).

    Training: the exact likelihood up to ``max_exact_labels`` labels, the pseudo-likelihood
    (Besag, 1975) beyond (``objective="auto"``); either can be forced.

    Args:
        input_dim: ``d``.
        n_labels: ``M``.
        max_exact_labels: exact regime of :class:`IsingLabels` (default 16, at most 20).
        objective: ``"auto"``, ``"likelihood"`` or ``"pseudo-likelihood"``.
        inference: inference beyond the exact regime: ``"auto"`` (Gibbs), ``"gibbs"``,
            ``"mean-field"``.
        n_mc_samples: Gibbs chains per row.
        gibbs_sweeps: sweeps per chain.
    """

    name = "ising"
    accepts_per_label = True
    linear_logits = True

    def __init__(self, input_dim: int, n_labels: int, max_exact_labels: int = DEFAULT_MAX_EXACT_LABELS,
                 objective: str = "auto", inference: str = "auto", n_mc_samples: int = 200, gibbs_sweeps: int = 20):
        super().__init__(input_dim, n_labels, max_exact_labels=max_exact_labels, objective=objective,
                         inference=inference, n_mc_samples=n_mc_samples, gibbs_sweeps=gibbs_sweeps)
        if objective not in OBJECTIVES:
            raise ValueError(f"Expected `objective` in {OBJECTIVES}, got {objective!r}")
        if objective == "likelihood" and n_labels > max_exact_labels:
            raise ValueError(
                f"The exact likelihood needs n_labels <= max_exact_labels ({max_exact_labels}), got {n_labels}"
            )
        self.linear = Linear(input_dim, n_labels)
        nn.init.zeros_(self.linear.weight)
        self.couplings = nn.Parameter(torch.zeros(n_labels, n_labels))

    @property
    def uses_pseudo_likelihood(self) -> bool:
        objective = self.options["objective"]
        beyond_exact = self.n_labels > self.options["max_exact_labels"]
        return objective == "pseudo-likelihood" or (objective == "auto" and beyond_exact)

    def forward(self, h: torch.Tensor) -> IsingLabels:
        o = self.options
        return IsingLabels(label_logits(self.linear, h), self.couplings, max_exact_labels=o["max_exact_labels"],
                           inference=o["inference"], n_mc_samples=o["n_mc_samples"], gibbs_sweeps=o["gibbs_sweeps"])

    def row_losses(self, h, y):
        """``-log p(y | x)``, or beyond the exact regime minus the pseudo-log-likelihood, both
        of the conditioned model (given y != 0 when ``nonempty``: see
        :meth:`comorbid.distributions.nonempty.NonEmpty.conditional_log_probs`)."""
        if not self.uses_pseudo_likelihood:
            return super().row_losses(h, y)
        return -self.distribution(h).pseudo_log_prob(y)

    def prepare(self, labels: np.ndarray, label_names: list[str] | None = None) -> None:
        # With zero couplings the model is independent and these biases give its marginals.
        with torch.no_grad():
            self.linear.bias.copy_(log_odds(labels))
