"""Costs of predicting one label set when another is true, for minimum-Bayes-risk decoding.

A cost is a callable ``cost(y_hat [K, M], y [S, M]) -> [K, S]`` (float, finite): the cost of
every candidate against every sampled truth. Three kinds:

- :class:`UtilityCost`: ``1 - u`` for a utility of :mod:`comorbid.metrics.utility`
  (``hamming``, ``subset``, ``instance-f1``, ``jaccard``), by one matrix product.
- :class:`MatrixCost`: a label-by-label cost ``C [M, M]`` (``C[i, j]``: predicting label ``i``
  where label ``j`` is true; e.g. ICD tree distances) turned into a set-to-set cost, the
  symmetric nearest-neighbour ("Chamfer") distance (Barrow, Tenenbaum, Bolles & Wolf, 1977,
  IJCAI, "Parametric correspondence and chamfer matching")::

      cost(A, B) = sum_{i in A} min_{j in B} C[i, j]  +  sum_{j in B} min_{i in A} C[i, j]

  each predicted label pays its distance to the nearest true label, each true label its
  distance to the nearest predicted one. Empty sets: ``cost(0, 0) = 0``; against an empty set
  every label of the other set pays ``empty_cost`` (default: the largest entry of ``C``). With
  ``C = 1 - I`` (and ``empty_cost = 1``) it is exactly the Hamming distance ``|A xor B|``, so it
  generalises Hamming loss: a near miss (a sibling code) costs its tree distance instead of 2
  (a missed code plus a wrong one). The optimal-transport alternative (Frogner et al., 2015,
  NeurIPS) needs mass on both sides and a rule for unequal sizes; the nearest-neighbour cost
  needs neither and is linear in each set, which the decoder exploits.
- :class:`FunctionCost`: any Python function with the signature above.

:func:`cost_from_spec` reads the CLI's ``mbr=...`` argument: ``icd-tree``, a utility name, or a
CSV file holding ``C``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from comorbid.metrics.utility import UTILITIES, utility_table

#: Work tensors of the nearest-neighbour cost hold at most this many entries.
_CHUNK_ENTRIES = 1 << 22


class SetCost:
    """Base of every set-to-set cost: ``__call__(y_hat [K, M], y [S, M]) -> [K, S]``."""

    spec: str = "cost"

    def __call__(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def bind(self, label_names: Sequence[str]) -> "SetCost":
        """The cost for these labels (costs that depend on what the labels are resolve here)."""
        return self

    def restrict(self, columns: torch.Tensor, n_labels: int) -> "SetCost | None":
        """An equal cost on the label subset ``columns`` of ``n_labels`` (holding every label set
        in any row it will see), or ``None`` if the cost cannot be restricted. Lets decoding on many labels
        work on the few labels that matter for a row."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


class UtilityCost(SetCost):
    """``1 - u(y_hat, y)`` for a utility name (see :mod:`comorbid.metrics.utility`)."""

    def __init__(self, name: str, n_labels: int | None = None):
        if name not in UTILITIES:
            raise ValueError(f"Expected a utility name in {sorted(UTILITIES)}, got {name!r}")
        self.name = name
        self.spec = name
        self.n_labels = n_labels

    def __call__(self, y_hat, y):
        return 1.0 - utility_table(self.name, y_hat, y, self.n_labels)

    def restrict(self, columns, n_labels):
        return UtilityCost(self.name, self.n_labels if self.n_labels is not None else n_labels)


class MatrixCost(SetCost):
    """The nearest-neighbour set cost of a label-by-label cost matrix (see the module docstring).

    Args:
        matrix: ``[M, M]`` finite, non-negative, zero diagonal; ``C[i, j]`` is the cost of
            predicting ``i`` where ``j`` is true.
        empty_cost: what each label pays against an empty set (default ``C.max()``, or 1 if
            ``C`` is all zero).
        label_names: ``[M]`` the labels the rows/columns stand for (then :meth:`bind` reorders
            the matrix to the model's labels).
        spec: how to name it (``"icd-tree"``, the file path).
    """

    def __init__(self, matrix, empty_cost: float | None = None, label_names: Sequence[str] | None = None,
                 spec: str = "matrix"):
        matrix = torch.as_tensor(np.asarray(matrix, dtype=np.float64))
        if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"Expected a square cost matrix [M, M], got shape {tuple(matrix.shape)}")
        if not torch.isfinite(matrix).all() or (matrix < 0).any():
            raise ValueError("Expected a cost matrix of finite, non-negative numbers")
        if matrix.numel() and matrix.diagonal().abs().max() > 0:
            i = int(matrix.diagonal().abs().argmax())
            raise ValueError(f"Expected a zero diagonal in the cost matrix (a right label costs nothing), got {matrix[i, i].item()} at [{i}, {i}]")
        if label_names is not None and len(label_names) != matrix.shape[0]:
            raise ValueError(f"Expected {matrix.shape[0]} label names for the cost matrix, got {len(label_names)}")
        self.matrix = matrix
        default = matrix.max().item() if matrix.numel() and matrix.max() > 0 else 1.0
        self.empty_cost = float(default if empty_cost is None else empty_cost)
        if not (math.isfinite(self.empty_cost) and self.empty_cost >= 0):
            raise ValueError(f"Expected a finite, non-negative empty_cost, got {empty_cost}")
        self.label_names = None if label_names is None else [str(n) for n in label_names]
        self.spec = spec

    def bind(self, label_names):
        names = [str(n) for n in label_names]
        if self.label_names is None:
            if len(names) != self.matrix.shape[0]:
                raise ValueError(f"Expected a cost matrix for {len(names)} labels, got {self.matrix.shape[0]}")
            return self
        index = {name: i for i, name in enumerate(self.label_names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise ValueError(f"The cost matrix {self.spec} has no row for {len(missing)} label(s) of the model: {', '.join(missing[:5])}")
        rows = torch.tensor([index[n] for n in names], dtype=torch.long)
        return MatrixCost(self.matrix[rows][:, rows], self.empty_cost, names, self.spec)

    def restrict(self, columns, n_labels):
        restricted = MatrixCost.__new__(MatrixCost)
        restricted.matrix = self.matrix[columns][:, columns]
        restricted.empty_cost, restricted.label_names, restricted.spec = self.empty_cost, None, self.spec
        return restricted

    def _nearest(self, matrix: torch.Tensor, sets: torch.Tensor) -> torch.Tensor:
        """``D[s, r] = min_{j in sets[s]} matrix[r, j]`` (``empty_cost`` for an empty set), ``[S, R]``
        for ``matrix [R, M]`` and ``sets [S, M]``.

        Works on each set's list of labels (padded with a column of +inf), so the cost is
        ``O(S R L)`` for sets of at most ``L`` labels rather than ``O(S R M)``.
        """
        s, m = sets.shape
        r = matrix.shape[0]
        on = sets > 0
        sizes = on.sum(1)
        width = max(int(sizes.max()) if s else 0, 1)
        rows, cols = on.nonzero(as_tuple=True)  # row-major: each row's labels in order
        starts = torch.cumsum(sizes, 0) - sizes
        index = torch.full((s, width), m, dtype=torch.long)
        index[rows, torch.arange(len(rows)) - starts[rows]] = cols
        padded = torch.cat([matrix, torch.full((r, 1), math.inf, dtype=matrix.dtype)], 1)  # [R, M+1]
        out = torch.empty(s, r, dtype=matrix.dtype)
        step = max(1, _CHUNK_ENTRIES // max(r * width, 1))
        for start in range(0, s, step):
            out[start : start + step] = padded[:, index[start : start + step]].amin(-1).T
        return torch.where(torch.isinf(out), torch.full_like(out, self.empty_cost), out)

    def __call__(self, y_hat, y):
        matrix = self.matrix
        y_hat, y = torch.as_tensor(y_hat).to(matrix.dtype), torch.as_tensor(y).to(matrix.dtype)
        if y_hat.shape[-1] != matrix.shape[0] or y.shape[-1] != matrix.shape[0]:
            raise ValueError(f"Expected label sets with {matrix.shape[0]} labels, got {y_hat.shape[-1]} and {y.shape[-1]}")
        # each predicted label pays its distance to the nearest true one: only labels that some
        # candidate predicts need that distance, and likewise on the other side
        predicted = y_hat.any(0).nonzero().flatten()
        true = y.any(0).nonzero().flatten()
        predicted_pays = y_hat[:, predicted] @ self._nearest(matrix[predicted], y).T  # [K, S]
        true_pays = self._nearest(matrix.T[true], y_hat) @ y[:, true].T  # [K, S]
        return predicted_pays + true_pays


class IcdTreeCost(SetCost):
    """:class:`MatrixCost` of ICD tree distances, built for the labels at :meth:`bind`
    (:func:`comorbid.icd.cost_matrix`, normalised so the farthest pair costs 1)."""

    spec = "icd-tree"

    def bind(self, label_names):
        from comorbid.icd import cost_matrix

        return MatrixCost(cost_matrix(list(label_names)), label_names=list(label_names), spec=self.spec)

    def __call__(self, y_hat, y):
        raise ValueError("The icd-tree cost needs the label names first: call bind(label_names)")


class FunctionCost(SetCost):
    """A user's cost function ``fn(y_hat [K, M], y [S, M]) -> [K, S]``, its output checked."""

    def __init__(self, function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], spec: str | None = None):
        if not callable(function):
            raise ValueError(f"Expected a callable cost function, got {type(function).__name__}")
        self.function = function
        self.spec = spec or getattr(function, "__name__", "function")

    def __call__(self, y_hat, y):
        out = torch.as_tensor(self.function(y_hat, y))
        expected = (y_hat.shape[0], y.shape[0])
        if tuple(out.shape) != expected:
            raise ValueError(f"Expected the cost function {self.spec} to return shape {list(expected)}, got {list(out.shape)}")
        if not torch.isfinite(out).all():
            raise ValueError(f"Expected finite costs from the cost function {self.spec}")
        return out.to(torch.promote_types(out.dtype, torch.float32))


def read_cost_csv(path: str | Path) -> MatrixCost:
    """A cost matrix from a CSV file: a header row ``label,NAME_1,...,NAME_M``, then one row per
    label ``NAME_i,C[i,1],...,C[i,M]`` (rows in any order, each header name once)."""
    path = Path(path)
    try:
        with path.open(newline="") as stream:
            rows = list(csv.reader(stream))
    except OSError as error:
        raise ValueError(f"Cannot read the cost file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text CSV file") from None
    if not rows or len(rows[0]) < 2:
        raise ValueError(f"{path} line 1: expected a header 'label,NAME_1,...,NAME_M'")
    names = [name.strip() for name in rows[0][1:]]
    if len(set(names)) != len(names):
        raise ValueError(f"{path} line 1: duplicate label names in the header")
    column = {name: i for i, name in enumerate(names)}
    matrix = np.full((len(names), len(names)), np.nan)
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(names) + 1:
            raise ValueError(f"{path} line {line}: expected {len(names) + 1} cells, got {len(row)}")
        name = row[0].strip()
        if name not in column:
            raise ValueError(f"{path} line {line}: label {name!r} is not in the header")
        if not np.isnan(matrix[column[name], 0]):
            raise ValueError(f"{path} line {line}: a second row for label {name!r}")
        try:
            values = [float(cell) for cell in row[1:]]
        except ValueError:
            raise ValueError(f"{path} line {line}: expected numbers after the label name") from None
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"{path} line {line}: expected finite, non-negative costs")
        if values[column[name]] != 0:
            raise ValueError(f"{path} line {line}: expected cost 0 for {name!r} against itself, got {values[column[name]]}")
        matrix[column[name]] = values
    missing = [name for name in names if np.isnan(matrix[column[name], 0])]
    if missing:
        raise ValueError(f"{path}: no row for label(s) {', '.join(missing[:5])}")
    return MatrixCost(matrix, label_names=names, spec=str(path))


def cost_from_spec(spec: str | SetCost | Callable) -> SetCost:
    """``"icd-tree"``, a utility name (cost ``1 - u``), a CSV file of a cost matrix, a
    :class:`SetCost` or a function ``(y_hat [K, M], y [S, M]) -> [K, S]``."""
    if isinstance(spec, SetCost):
        return spec
    if callable(spec):
        return FunctionCost(spec)
    if spec == "icd-tree":
        return IcdTreeCost()
    if spec in UTILITIES:
        return UtilityCost(spec)
    if Path(spec).is_file():
        return read_cost_csv(spec)
    raise ValueError(
        f"Expected the mbr cost to be icd-tree, one of {', '.join(sorted(UTILITIES))}, or an existing "
        f"CSV file, got {spec!r}"
    )
