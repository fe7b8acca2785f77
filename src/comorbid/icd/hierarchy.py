"""The ICD tree: ancestors, tree distances and label-cost matrices, hierarchy-consistent labels.

The tree has a synthetic root above the chapters; ICD-9-CM reads
``786.2 (Cough) -> 786 -> 780-789 (Symptoms) -> 780-799 (chapter) -> root``, ICD-10-CM
``J18.9 -> J18 -> J09-J18 (block) -> 10 (chapter) -> root``.

Codes missing from the tables (obsolete, misspelt or newer than the tables) get a documented
fallback place instead of an error, so that a label list from real data always has a cost
matrix: such a code hangs under its *structural* parent (the code with its last character
dropped: ``786.20 -> 786.2``) when that exists, recursively; a missing 3-character category
hangs directly under the root. This keeps the tree a tree (every node has one parent,
decided by the code alone), so tree distances stay a metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._syntax import SYSTEM_TITLES, System, check_system, structural_parent
from ._syntax import normalize as _normalize_code
from ._tables import table
from .codes import detect_system, validate

__all__ = [
    "ancestors",
    "chapter",
    "tree_distance",
    "cost_matrix",
    "ancestor_matrix",
    "make_consistent",
    "expand_with_ancestors",
    "LabelHierarchy",
]

# Rows of the [M, M, depth] comparison done at once in `cost_matrix` (caps memory for big M).
_CHUNK_ROWS = 256


def _lineage(canonical: str, system: System) -> list[str]:
    """``[node, parent, ..., top]``, with the fallback for nodes missing from the table."""
    tab = table(system)
    out: list[str] = []
    node: str | None = canonical
    while node is not None and not tab.contains(node):
        out.append(node)
        node = structural_parent(node, system)
    while node is not None:
        out.append(node)
        node = tab.parent(node)
    return out


def _check_known(code: str, canonical: str, system: System) -> None:
    if not table(system).contains(canonical):
        validate(code, system)  # raises with the reason


def ancestors(code: str, system: str = "icd9", strict: bool = True) -> list[str]:
    """The code and its ancestors, from the code up to its chapter.

    Args:
        code: any writing :func:`comorbid.icd.normalize` accepts; blocks and chapters too.
        system: ``"icd9"`` or ``"icd10"``.
        strict: if ``True`` (default), a code missing from the tables raises; if ``False`` it
            gets the fallback path of the module docstring (``"786.20"`` ->
            ``["786.20", "786.2", "786", "780-789", "780-799"]``).

    Returns:
        Canonical node names, the code first and the chapter last.

    Example:
        >>> ancestors("V4281")
        ['V42.81', 'V42.8', 'V42', 'V40-V49', 'V01-V91']
    """
    system = check_system(system)
    canonical = _normalize_code(code, system)
    if strict:
        _check_known(code, canonical, system)
    return _lineage(canonical, system)


def chapter(code: str, system: str = "icd9") -> str:
    """The chapter of a code: a range for ICD-9-CM (``"780-799"``), a number for ICD-10-CM (``"18"``).

    Raises:
        ValueError: when ``code`` is not in the classification.
    """
    return ancestors(code, system, strict=True)[-1]


def tree_distance(a: str, b: str, system: str = "icd9") -> int:
    """Number of edges on the path from ``a`` to ``b`` through their lowest common ancestor.

    ``d(a, b) = depth(a) + depth(b) - 2 depth(lca(a, b))`` with the synthetic root at depth 0
    and chapters at depth 1, so codes of different chapters are ``depth(a) + depth(b)`` apart.
    A tree's path length is a metric (symmetric, zero only on the diagonal, triangle inequality).
    Codes missing from the tables get the fallback place of the module docstring.

    Example:
        >>> tree_distance("786.2", "786.07"), tree_distance("786.2", "486")
        (3, 7)
    """
    system = check_system(system)
    path_a = _lineage(_normalize_code(a, system), system)
    path_b = _lineage(_normalize_code(b, system), system)
    shared = len(set(path_a) & set(path_b))
    return len(path_a) + len(path_b) - 2 * shared


def _resolve(label_names: Sequence[str], system: str | None) -> tuple[System, list[str]]:
    names = list(label_names)
    if not names:
        raise ValueError("Expected at least one label name, got none")
    resolved: System = detect_system(names) if system is None else check_system(system)
    canonical = [_normalize_code(name, resolved) for name in names]
    seen: dict[str, int] = {}
    for index, name in enumerate(canonical):
        if name in seen:
            raise ValueError(
                f"Expected distinct labels, got {names[seen[name]]!r} (label {seen[name]}) and "
                f"{names[index]!r} (label {index}), both {SYSTEM_TITLES[resolved]} code {name}"
            )
        seen[name] = index
    return resolved, canonical


def cost_matrix(
    label_names: Sequence[str], system: str | None = None, normalize: bool = True
) -> np.ndarray:
    """Tree distances between labels, as the ground cost of a Wasserstein loss or an MBR decoder.

    ``C[i, j] = tree_distance(label_i, label_j)`` (see :func:`tree_distance`); with
    ``normalize=True`` divided by the largest entry, so the two farthest labels cost 1. Tree
    distances as label costs: Frogner et al., "Learning with a Wasserstein Loss", NeurIPS 2015.

    Args:
        label_names: ``[M]`` distinct codes (any writing :func:`comorbid.icd.normalize` takes).
        system: ``"icd9"``/``"icd10"``, or ``None`` to detect it (:func:`detect_system`).
        normalize: divide by the largest entry (a matrix of zeros stays zeros).

    Returns:
        ``[M, M]`` float64, symmetric, zero diagonal, positive elsewhere; in ``[0, 1]`` when
        normalised.

    Raises:
        ValueError: for a malformed code, an undetectable system, or duplicate labels.

    Example:
        >>> cost_matrix(["786.2", "786.07", "486"], normalize=False)
        array([[0., 3., 7.],
               [3., 0., 8.],
               [7., 8., 0.]])
    """
    resolved, canonical = _resolve(label_names, system)
    paths = [_lineage(name, resolved)[::-1] for name in canonical]  # top -> code
    node_ids: dict[str, int] = {}
    depth = max(len(path) for path in paths)
    m = len(paths)
    # Padding is unique per row, so padded positions never match another row's (a row does
    # match itself there, hence the clip to the path lengths below).
    table_ = -np.arange(1, m + 1, dtype=np.int64)[:, None].repeat(depth, axis=1)
    for row, path in enumerate(paths):
        for col, node in enumerate(path):
            table_[row, col] = node_ids.setdefault(node, len(node_ids))
    lengths = np.array([len(path) for path in paths], dtype=np.int64)
    common = np.empty((m, m), dtype=np.int64)
    for start in range(0, m, _CHUNK_ROWS):
        block = table_[start : start + _CHUNK_ROWS, None, :] == table_[None, :, :]
        # shared prefix length = number of leading positions where the paths agree
        common[start : start + _CHUNK_ROWS] = np.cumprod(block, axis=2).sum(axis=2)
    common = np.minimum(common, np.minimum(lengths[:, None], lengths[None, :]))
    costs = (lengths[:, None] + lengths[None, :] - 2 * common).astype(np.float64)
    if normalize and costs.max() > 0:
        costs /= costs.max()
    return costs


def ancestor_matrix(label_names: Sequence[str], system: str | None = None) -> np.ndarray:
    """Which labels are ancestors of which, among the given labels only.

    Returns:
        ``H`` ``[M, M]`` bool with ``H[i, j]`` true when label ``j`` is label ``i`` or a
        descendant of it (so the diagonal is true). Codes missing from the tables use the
        fallback place of the module docstring.

    Example:
        >>> ancestor_matrix(["786", "786.2", "486"]).astype(int)
        array([[1, 1, 0],
               [0, 1, 0],
               [0, 0, 1]])
    """
    resolved, canonical = _resolve(label_names, system)
    index = {name: i for i, name in enumerate(canonical)}
    out = np.zeros((len(canonical), len(canonical)), dtype=bool)
    for j, name in enumerate(canonical):
        for node in _lineage(name, resolved):
            if node in index:
                out[index[node], j] = True
    return out


def _check_binary(pred: np.ndarray, m: int, name: str) -> None:
    if pred.ndim not in (1, 2) or pred.shape[-1] != m:
        raise ValueError(
            f"Expected `{name}` to be [N, {m}] (one column per label), got shape {pred.shape}"
        )
    bad = np.argwhere((pred != 0) & (pred != 1))
    if len(bad):
        where = tuple(int(i) for i in bad[0])
        raise ValueError(f"Expected `{name}` to contain only 0/1, got {pred[where]} at index {where}")


def make_consistent(
    pred: np.ndarray, label_names: Sequence[str], system: str | None = None
) -> np.ndarray:
    """Add to every predicted label set the ancestors of its codes that are labels too.

    Hierarchy-consistent decoding: ``out[n, i] = max_j pred[n, j] H[i, j]`` with ``H`` from
    :func:`ancestor_matrix`, so a set that holds 786.2 also holds 786 when 786 is a label. Labels
    that are not ancestors of a predicted label are left as they are (never removed).

    Args:
        pred: ``[N, M]`` (or ``[M]``) 0/1 array, any numeric or bool dtype.
        label_names: ``[M]`` codes, in column order.
        system: ``"icd9"``/``"icd10"``, or ``None`` to detect it.

    Returns:
        Array of ``pred``'s shape and dtype.
    """
    pred = np.asarray(pred)
    names = list(label_names)
    _check_binary(pred, len(names), "pred")
    h = ancestor_matrix(names, system).astype(np.int64)
    return ((pred.astype(np.int64) @ h.T) > 0).astype(pred.dtype)


@dataclass(frozen=True)
class LabelHierarchy:
    """A label list closed under ancestors, and the map from the original label sets to it.

    Attributes:
        label_names: ``[M']`` canonical names: the ``M`` original labels first, in their order,
            then the added ancestors, sorted by depth (chapters first) then name.
        n_original: ``M``.
        matrix: ``[M, M']`` bool; ``matrix[j, k]`` true when label ``k`` is original label
            ``j`` or one of its ancestors.
        parent: ``[M']`` int64, index in ``label_names`` of each label's parent, ``-1`` for
            top-level labels (chapters, or categories placed under the root by the fallback).
        system: ``"icd9"`` or ``"icd10"``.
    """

    label_names: list[str]
    n_original: int
    matrix: np.ndarray
    parent: np.ndarray
    system: str

    def expand(self, y: np.ndarray) -> np.ndarray:
        """``[N, M]`` 0/1 label sets -> ``[N, M']``: every code set together with its ancestors.

        ``out[n, k] = max_j y[n, j] matrix[j, k]``; the first ``M`` columns equal ``y``.
        """
        y = np.asarray(y)
        _check_binary(y, self.n_original, "y")
        return ((y.astype(np.int64) @ self.matrix.astype(np.int64)) > 0).astype(y.dtype)


def expand_with_ancestors(
    label_names: Sequence[str], system: str | None = None
) -> LabelHierarchy:
    """Augment a label list with every ancestor (up to the chapters) of its labels.

    For hierarchical losses, which score a code's ancestors as well as the code (e.g. the
    hierarchical label sets of Vens et al., "Decision trees for hierarchical multi-label
    classification", Machine Learning 2008). Codes missing from the tables use the fallback
    place of the module docstring (their structural parents are added).

    Example:
        >>> h = expand_with_ancestors(["786.2", "786.07"])
        >>> h.label_names
        ['786.2', '786.07', '780-799', '780-789', '786', '786.0']
        >>> h.expand(np.array([[1, 0]]))
        array([[1, 0, 1, 1, 1, 0]])
    """
    resolved, canonical = _resolve(label_names, system)
    lineages = [_lineage(name, resolved) for name in canonical]
    depth_of: dict[str, int] = {}
    for lineage in lineages:
        for level, node in enumerate(reversed(lineage)):
            depth_of[node] = level
    original = set(canonical)
    added = sorted((node for node in depth_of if node not in original), key=lambda n: (depth_of[n], n))
    names = canonical + added
    index = {name: k for k, name in enumerate(names)}
    matrix = np.zeros((len(canonical), len(names)), dtype=bool)
    for j, lineage in enumerate(lineages):
        matrix[j, [index[node] for node in lineage]] = True
    parent = np.full(len(names), -1, dtype=np.int64)
    for lineage in lineages:
        for child, up in zip(lineage[:-1], lineage[1:]):
            parent[index[child]] = index[up]
    return LabelHierarchy(
        label_names=names, n_original=len(canonical), matrix=matrix, parent=parent, system=resolved
    )
