"""Hierarchy-aware parameter sharing: each code's weights are its own plus its ICD ancestors'.

With ``tree_sharing=True`` on the independent head, code ``j`` is scored with

    w_j = v_j + sum_{a in anc(j)} u_a,        logit_j = w_j . x + b_j

where ``anc(j)`` are the nodes of the ICD tree above ``j`` (subcategory, category, block,
chapter) and ``j`` itself, kept where at least two of the labels lie under them; a node under
which only one label lies would just duplicate that label's own ``v_j``. The training penalty
(L1 or L2, ``TrainConfig.weight_decay``) falls on every ``v_j`` and ``u_a``, so evidence that
the codes of a category share (a word that signals any pneumonia) is paid for once, in ``u_a``,
instead of once per code: a rare code starts from what its siblings learned and needs its own
``v_j`` only for what sets it apart. This is the hierarchical prior of Gopal & Yang ("Recursive
regularization for large-scale classification with hierarchical and graphical dependencies",
KDD 2013) and of the "hierarchical shrinkage" of McCallum, Rosenfeld, Mitchell & Ng (ICML 1998),
written as a re-parametrisation (Daumé III, "Frustratingly easy domain adaptation", ACL 2007,
uses the same sum of a shared and an own weight vector). The model is still a product of
independent Bernoullis; only the prior over its weights knows the tree, so with no penalty the
optimum is that of the plain head (the ``u_a`` add no capacity).

Labels that are not ICD codes (no system detected) share nothing: the head is then the plain
independent head (``K = 0`` shared rows).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn


def label_tree_links(label_names: Sequence[str], system: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Which labels share which ICD tree nodes.

    Args:
        label_names: ``[M]`` label names; ICD-9-CM or ICD-10-CM codes for any sharing.
        system: ``"icd9"``/``"icd10"``, or ``None`` to detect it (labels that are not codes of
            one system give no links).

    Returns:
        ``links [2, nnz]`` int64 (row 0 the label, row 1 the node, sorted by node then label)
        and the ``K`` node names: every node on a label's path to its chapter (the label
        included) that lies above at least two of the labels.

    Example:
        >>> links, nodes = label_tree_links(["786.2", "786.07", "486"])
        >>> nodes
        ['780-799', '780-789', '786']
        >>> links.tolist()
        [[0, 1, 0, 1, 0, 1], [0, 0, 1, 1, 2, 2]]
    """
    from comorbid import icd

    names = list(label_names)
    try:
        resolved = icd.detect_system(names) if system is None else system
    except ValueError:
        return np.zeros((2, 0), dtype=np.int64), []
    members: dict[str, list[int]] = {}
    for label, name in enumerate(names):
        path = icd.ancestors(name, resolved, strict=False)
        for node in reversed(path):  # chapter first, so nodes come out top-down
            members.setdefault(node, []).append(label)
    nodes = [node for node, labels in members.items() if len(labels) >= 2]
    pairs = [(label, index) for index, node in enumerate(nodes) for label in members[node]]
    links = np.array(pairs, dtype=np.int64).T.reshape(2, -1)
    return links, nodes


class TreeSharedWeights(nn.Module):
    """The shared part ``sum_{a in anc(j)} u_a . x`` of each label's logit.

    Parameters: ``weight [K, d]`` (one row ``u_a`` per shared node, initialised to 0).
    Buffers: ``links [2, nnz]`` (label, node) pairs. Built empty (``K = nnz = 0``) or, when a
    saved model is rebuilt, with the saved sizes; :meth:`set_links` fills it from the labels.
    """

    def __init__(self, input_dim: int, n_labels: int, n_nodes: int = 0, n_links: int = 0):
        super().__init__()
        self.input_dim = input_dim
        self.n_labels = n_labels
        self.weight = nn.Parameter(torch.zeros(n_nodes, input_dim))
        self.register_buffer("links", torch.zeros(2, n_links, dtype=torch.int64))

    def set_links(self, links: np.ndarray, n_nodes: int) -> None:
        """New links ``[2, nnz]`` over ``n_nodes`` nodes; the node weights restart at 0."""
        links = torch.as_tensor(np.asarray(links, dtype=np.int64).reshape(2, -1))
        if links.numel() and (int(links[0].max()) >= self.n_labels or int(links[1].max()) >= n_nodes):
            raise ValueError(f"Expected links within {self.n_labels} labels and {n_nodes} nodes, "
                             f"got a label {int(links[0].max())} or node {int(links[1].max())}")
        self.weight = nn.Parameter(torch.zeros(n_nodes, self.input_dim, dtype=self.weight.dtype,
                                               device=self.weight.device))
        self.links = links.to(self.weight.device)

    def membership(self) -> torch.Tensor:
        """``A [M, K]`` sparse COO, ``A[j, a] = 1`` when label ``j`` lies under node ``a``."""
        values = torch.ones(self.links.shape[1], dtype=self.weight.dtype, device=self.weight.device)
        return torch.sparse_coo_tensor(self.links, values, (self.n_labels, self.weight.shape[0]),
                                       check_invariants=False)

    def shared_weight(self) -> torch.Tensor:
        """``A U`` ``[M, d]``: the part of each label's weight vector that comes from its nodes."""
        return torch.sparse.mm(self.membership(), self.weight)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The shared logits ``[B, M]`` of features ``h [B, d]`` (dense or sparse CSR) or
        per-label features ``h [B, M, d]``."""
        if h.dim() == 3:
            return torch.einsum("bmd,md->bm", h, self.shared_weight())
        by_node = h @ self.weight.t() if h.layout == torch.strided else torch.sparse.mm(h, self.weight.t())
        out = torch.zeros(h.shape[0], self.n_labels, dtype=by_node.dtype, device=by_node.device)
        # O(B nnz): each label adds the scores of the nodes above it
        return out.index_add(1, self.links[0], by_node[:, self.links[1]])
