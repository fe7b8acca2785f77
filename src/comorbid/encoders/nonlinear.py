"""Non-linear features for numeric (and one-hot nominal) inputs: tree leaves and random Fourier
features, each after the ``mlp`` encoder's standardisation and before its (optional) hidden layers.

Both are fitted once on the training rows (``fit``) and then fixed, like TF-IDF: the head (or the
hidden layers) trains on ``[standardised x, non-linear features]``. Their fitted parameters are
tensors (buffers), so a model saves them in its safetensors file and nothing is pickled; the
trees are stored as node arrays and applied by :func:`leaf_indices`, not by scikit-learn.

- ``trees``: each row becomes the one-hot code of the leaf it reaches in every tree of an
  ensemble of extremely randomised trees (Geurts, Ernst & Wehenkel, 2006, Machine Learning) grown
  on the training labels (multi-output regression of ``y [N, M]``, so a split separates label
  *sets*), or of totally random trees (``supervised=False``; Moosmann, Triggs & Jurie, 2006,
  NeurIPS; scikit-learn's ``RandomTreesEmbedding``). Leaf embeddings as features of a linear model:
  He et al., 2014, "Practical lessons from predicting clicks on ads at Facebook", ADKDD.
- ``rff``: random Fourier features ``sqrt(2 / D) cos(z W + b)`` of the standardised ``z``, whose
  inner products approximate the RBF kernel ``exp(-gamma |z - z'|^2)`` (Rahimi & Recht, 2007,
  NeurIPS), so a linear head on them approximates a kernel machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from comorbid.encoders.mlp import MLPEncoder


def leaf_indices(x: np.ndarray, left: np.ndarray, right: np.ndarray, feature: np.ndarray,
                 threshold: np.ndarray, depth: int) -> np.ndarray:
    """The node each row reaches at the bottom of each tree.

    Args:
        x: ``[N, d]`` features (compared as float32, as scikit-learn's trees do).
        left, right: ``[T, K]`` child node of each node of each tree (``-1`` at a leaf; trees
            with fewer than ``K`` nodes are padded with leaves).
        feature: ``[T, K]`` feature a node splits on (anything at a leaf).
        threshold: ``[T, K]`` split threshold (``x[feature] <= threshold`` goes left).
        depth: the deepest leaf's depth (number of steps).

    Returns:
        ``[N, T]`` node index of the leaf reached in each tree.
    """
    x = np.asarray(x, dtype=np.float32)
    trees = np.arange(left.shape[0])[None, :]
    node = np.zeros((x.shape[0], left.shape[0]), dtype=np.int64)
    for _ in range(depth):
        is_leaf = left[trees, node] < 0
        if is_leaf.all():
            break
        values = np.take_along_axis(x, np.maximum(feature[trees, node], 0), axis=1)
        goes_left = values <= threshold[trees, node]
        node = np.where(is_leaf, node, np.where(goes_left, left[trees, node], right[trees, node]))
    return node


class TreeLeafEncoder(MLPEncoder):
    """x -> standardise -> [z, one-hot leaf of z in each of ``n_trees`` trees] -> [Linear -> ReLU
    -> Dropout] x L.

    Args:
        n_trees: trees in the ensemble.
        max_leaf_nodes: leaves per tree at most (best-first growth), so at most
            ``n_trees * max_leaf_nodes`` leaf columns.
        min_samples_leaf: training rows per leaf at least: leaves that hold a handful of rows
            would let the head memorise the training labels through their codes.
        supervised: grow extremely randomised trees on the training labels (``True``) or totally
            random trees on the features alone (``False``).
        raw: keep the standardised features beside the leaves.
        hidden, dropout: hidden layers on top, as in the ``mlp`` encoder (``()``: a linear head).
        seed: seed of the trees.
    """

    name = "trees"
    reads_text = False

    def __init__(self, n_trees: int = 100, max_leaf_nodes: int = 32, min_samples_leaf: int = 5,
                 supervised: bool = True, raw: bool = True, hidden=(), dropout: float = 0.2, seed: int = 0):
        super().__init__(hidden=hidden, dropout=dropout)
        self.options.update(n_trees=n_trees, max_leaf_nodes=max_leaf_nodes, min_samples_leaf=min_samples_leaf,
                            supervised=supervised, raw=raw, seed=seed)
        self.depth = 0
        self.n_leaves = 0
        for name in ("tree_left", "tree_right", "tree_feature", "leaf_column"):
            self.register_buffer(name, torch.zeros(0, 0, dtype=torch.int64))
        self.register_buffer("tree_threshold", torch.zeros(0, 0, dtype=torch.float64))

    def _allocate(self, n_trees: int, n_nodes: int) -> None:
        for name in ("tree_left", "tree_right", "tree_feature", "leaf_column"):
            setattr(self, name, torch.full((n_trees, n_nodes), -1, dtype=torch.int64))
        self.tree_threshold = torch.zeros(n_trees, n_nodes, dtype=torch.float64)

    def _width(self) -> int:
        return (self.input_dim if self.options["raw"] else 0) + self.n_leaves

    def fit(self, inputs: Any, labels: Any = None) -> "TreeLeafEncoder":
        from sklearn.ensemble import ExtraTreesRegressor, RandomTreesEmbedding

        super().fit(inputs)
        z = self.standardize(self._dense(inputs)).numpy()
        options = self.options
        shared = {"n_estimators": options["n_trees"], "max_leaf_nodes": options["max_leaf_nodes"],
                  "min_samples_leaf": options["min_samples_leaf"], "random_state": options["seed"], "n_jobs": 1}
        if options["supervised"]:
            if labels is None:
                raise ValueError("The trees encoder with supervised=True grows its trees on the labels: "
                                 "expected `labels` [N, M] in fit, got None")
            targets = np.asarray(labels.toarray() if hasattr(labels, "toarray") else labels, dtype=np.float64)
            trees = [t.tree_ for t in ExtraTreesRegressor(max_features=1.0, **shared).fit(z, targets).estimators_]
        else:
            trees = [t.tree_ for t in RandomTreesEmbedding(max_depth=None, **shared).fit(z).estimators_]
        self._allocate(len(trees), max(t.node_count for t in trees))
        column = 0
        with torch.no_grad():
            for i, tree in enumerate(trees):
                n = tree.node_count
                self.tree_left[i, :n] = torch.as_tensor(tree.children_left)
                self.tree_right[i, :n] = torch.as_tensor(tree.children_right)
                self.tree_feature[i, :n] = torch.as_tensor(tree.feature)
                self.tree_threshold[i, :n] = torch.as_tensor(tree.threshold)
                leaves = np.flatnonzero(tree.children_left < 0)
                self.leaf_column[i, leaves] = torch.arange(column, column + len(leaves))
                column += len(leaves)
        self.depth = max(int(t.max_depth) for t in trees)
        self.n_leaves = column
        self._build_network(self._width())
        return self

    def leaves(self, z: np.ndarray) -> np.ndarray:
        """``z [B, input_dim]`` (standardised) -> ``[B, T]`` leaf column of each row in each tree."""
        node = leaf_indices(z, self.tree_left.numpy(), self.tree_right.numpy(), self.tree_feature.numpy(),
                            self.tree_threshold.numpy(), self.depth)
        return np.take_along_axis(self.leaf_column.numpy()[None, :, :], node[:, :, None], axis=2)[:, :, 0]

    def featurize(self, inputs: Any) -> torch.Tensor:
        self.check_inputs(inputs)
        z = self.standardize(self._dense(inputs))
        columns = torch.as_tensor(self.leaves(z.numpy()))
        onehot = torch.zeros(len(z), self.n_leaves, dtype=z.dtype)
        onehot.scatter_(1, columns, 1.0)
        return torch.cat([z, onehot], dim=1) if self.options["raw"] else onehot

    def fitted_state(self) -> dict[str, Any]:
        return {**super().fitted_state(), "n_trees": int(self.tree_left.shape[0]),
                "n_nodes": int(self.tree_left.shape[1]), "depth": self.depth, "n_leaves": self.n_leaves}

    def load_fitted_state(self, state: dict[str, Any]) -> None:
        self._build(state["input_dim"])
        self._allocate(state["n_trees"], state["n_nodes"])
        self.depth, self.n_leaves = state["depth"], state["n_leaves"]
        self._build_network(self._width())


class RandomFourierEncoder(MLPEncoder):
    """x -> standardise (z) -> [z, sqrt(2 / D) cos(z W + b)] -> [Linear -> ReLU -> Dropout] x L,
    with ``W ~ N(0, 2 gamma)`` ``[d, D]`` and ``b ~ U(0, 2 pi)`` drawn once at ``fit``.

    Args:
        n_components: ``D``, the number of random features.
        gamma: RBF kernel width; ``None`` is ``1 / d`` (scikit-learn's ``"scale"`` on
            standardised features).
        raw: keep the standardised features beside the random ones.
        hidden, dropout: hidden layers on top, as in the ``mlp`` encoder.
        seed: seed of ``W`` and ``b``.
    """

    name = "rff"
    reads_text = False

    def __init__(self, n_components: int = 1000, gamma: float | None = None, raw: bool = True, hidden=(),
                 dropout: float = 0.2, seed: int = 0):
        super().__init__(hidden=hidden, dropout=dropout)
        self.options.update(n_components=n_components, gamma=gamma, raw=raw, seed=seed)
        self.register_buffer("weight", torch.zeros(0, 0))
        self.register_buffer("offset", torch.zeros(0))

    def _build(self, input_dim: int) -> None:
        super()._build(input_dim)
        self.weight = torch.zeros(input_dim, self.options["n_components"])
        self.offset = torch.zeros(self.options["n_components"])
        self._build_network((input_dim if self.options["raw"] else 0) + self.options["n_components"])

    def fit(self, inputs: Any, labels: Any = None) -> "RandomFourierEncoder":
        super().fit(inputs)
        gamma = self.options["gamma"] or 1.0 / max(self.input_dim, 1)
        rng = np.random.default_rng(self.options["seed"])
        with torch.no_grad():
            self.weight.copy_(torch.as_tensor(rng.normal(0.0, np.sqrt(2.0 * gamma), self.weight.shape)))
            self.offset.copy_(torch.as_tensor(rng.uniform(0.0, 2.0 * np.pi, self.offset.shape)))
        return self

    def featurize(self, inputs: Any) -> torch.Tensor:
        self.check_inputs(inputs)
        z = self.standardize(self._dense(inputs))
        random = np.sqrt(2.0 / self.options["n_components"]) * torch.cos(z @ self.weight + self.offset)
        return torch.cat([z, random], dim=1) if self.options["raw"] else random
