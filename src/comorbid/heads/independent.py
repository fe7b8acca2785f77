"""The independent head: one logit per label, binary cross-entropy (or any label loss)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from comorbid.distributions.independent import IndependentBernoulli
from comorbid.heads.base import Head, Linear, label_logits, log_odds
from comorbid.heads.descriptions import DEFAULT_STRENGTH, DescriptionBlend, split_scores
from comorbid.heads.tree_sharing import TreeSharedWeights, label_tree_links


def label_structure_options(loss: str, options: dict[str, Any], label_names: list[str]) -> dict[str, Any]:
    """Loss options that depend on the labels, filled in from their names.

    ``wasserstein`` gets the ICD tree-distance cost matrix when every label is an ICD code (else
    the 0/1 cost); ``hierarchical`` gets the ICD ancestor matrix among the labels (else none:
    every label its own root, which makes MCLoss binary cross-entropy).
    """
    from comorbid import icd

    options = dict(options)
    try:
        system = icd.detect_system(label_names)
    except ValueError:
        system = None
    if loss == "wasserstein" and options.get("cost_matrix", "icd-tree") == "icd-tree":
        options["cost_matrix"] = (
            torch.as_tensor(icd.cost_matrix(label_names, system=system), dtype=torch.float32) if system else None
        )
    if loss == "hierarchical" and "hierarchy" not in options:
        m = len(label_names)
        options["hierarchy"] = icd.ancestor_matrix(label_names, system) if system else np.eye(m, dtype=bool)
    return options


class IndependentHead(Head):
    """logits = W h + b; p(y | x) = prod_j Bernoulli(y_j; sigmoid(logit_j)).

    Args:
        input_dim: ``d``.
        n_labels: ``M``.
        loss: training objective on the logits, a name from ``comorbid.losses`` (default the
            joint negative log-likelihood, i.e. binary cross-entropy summed over labels). With a
            ranking or set loss the sigmoids are scores rather than calibrated probabilities;
            decoders still read them as marginals.
        loss_options: keyword arguments of that loss (JSON values; label-dependent ones such as
            the Wasserstein cost matrix are filled in from the label names when training).
        descriptions: the last ``n_labels`` of the ``input_dim`` features are the note's match
            scores with the code descriptions, blended into each code's logit by its training
            count (:mod:`comorbid.heads.descriptions`); set by the model.
        description_strength: ``k`` of that blend.
        tree_sharing: each code's weight vector is its own plus one shared by the codes under
            each of its ICD ancestors (:mod:`comorbid.heads.tree_sharing`), so rare codes borrow
            strength from their siblings through the weight penalty; the links are set from the
            label names when training. ``tree_nodes`` and ``tree_links`` record their sizes so
            that a saved model is rebuilt with the right shapes (set by training, not by users).
    """

    name = "independent"
    accepts_per_label = True
    linear_logits = True
    accepts_descriptions = True

    def __init__(self, input_dim: int, n_labels: int, loss: str | None = None, loss_options: dict | None = None,
                 descriptions: bool = False, description_strength: float = DEFAULT_STRENGTH,
                 tree_sharing: bool = False, tree_nodes: int = 0, tree_links: int = 0):
        if not isinstance(tree_sharing, bool):
            raise ValueError(f"Expected `tree_sharing` true or false, got {tree_sharing!r}")
        super().__init__(input_dim, n_labels, loss=loss, loss_options=loss_options or {},
                         **({"descriptions": True, "description_strength": description_strength}
                            if descriptions else {}),
                         **({"tree_sharing": True, "tree_nodes": int(tree_nodes), "tree_links": int(tree_links)}
                            if tree_sharing else {}))
        self.description_blend = DescriptionBlend(n_labels, description_strength) if descriptions else None
        self.linear = Linear(input_dim - (n_labels if descriptions else 0), n_labels)
        nn.init.zeros_(self.linear.weight)
        self.tree = (TreeSharedWeights(self.linear.in_features, n_labels, int(tree_nodes), int(tree_links))
                     if tree_sharing else None)
        if loss is not None:
            from comorbid.losses import LOSSES  # fail early on an unknown name

            if loss not in LOSSES:
                raise ValueError(f"Unknown loss {loss!r}; expected one of: {', '.join(sorted(LOSSES))}")
        # The training loss is built in prepare() and kept out of the state dict: it is not part
        # of the model (a loaded model predicts without it).
        self._training_loss: list[nn.Module] = []

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        if self.description_blend is None:
            return self._unary(h)
        features, scores = split_scores(h, self.n_labels)
        return self.description_blend(self._unary(features), scores)

    def _unary(self, features: torch.Tensor) -> torch.Tensor:
        unary = label_logits(self.linear, features)
        return unary if self.tree is None else unary + self.tree(features)

    def forward(self, h: torch.Tensor) -> IndependentBernoulli:
        return IndependentBernoulli(self.logits(h))

    def nll(self, h, y, sample_weight=None):
        """The joint NLL (binary cross-entropy, :meth:`Head.nll`), or the ``loss`` option on the
        logits. Such a loss is not a likelihood of a set and reduces over labels itself, so it
        takes the row weights as element weights and does not see ``nonempty`` (which then
        applies in prediction only)."""
        loss = self.options["loss"]
        if loss is None:
            return super().nll(h, y, sample_weight)
        if not self._training_loss:
            self.prepare_loss([str(j) for j in range(self.n_labels)])
        # row weights enter as the loss's element weights (broadcast over the labels)
        weight = None if sample_weight is None else sample_weight[:, None]
        return self._training_loss[0](self.logits(h), y, weight=weight)

    def prepare_loss(self, label_names: list[str]) -> None:
        from comorbid.losses import get_loss

        loss = self.options["loss"]
        options = label_structure_options(loss, self.options["loss_options"], label_names)
        self._training_loss[:] = [get_loss(loss, **options)]

    def prepare(self, labels: np.ndarray, label_names: list[str] | None = None) -> None:
        with torch.no_grad():
            self.linear.bias.copy_(log_odds(labels))
        if self.description_blend is not None:
            self.description_blend.prepare(labels)
        if self.tree is not None:
            links, nodes = label_tree_links(label_names or [str(j) for j in range(labels.shape[1])])
            self.tree.set_links(links, len(nodes))
            self.options.update(tree_nodes=len(nodes), tree_links=int(links.shape[1]))
        if self.options["loss"] is not None:
            self.prepare_loss(label_names or [str(j) for j in range(labels.shape[1])])
