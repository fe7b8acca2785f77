"""Private steps shared by every metric: ``_validate`` then ``_format`` (torchmetrics' split).

Each public metric is ``validate -> format -> compute``; :func:`comorbid.metrics.evaluate`
runs the first two once and calls the ``_compute`` functions directly.

Accepted containers for label matrices ``[N, M]`` of 0/1: numpy arrays, nested lists,
``scipy.sparse`` matrices or arrays, and torch tensors (any device, detached here). Bool,
integer and float dtypes are accepted as long as every value is 0 or 1.

After formatting, label matrices are either both dense ``np.int8`` arrays or, when either
input was sparse, both CSR ``np.int8`` matrices (scikit-learn's multi-label metrics take
both); score matrices are dense ``np.float64``.
"""

from __future__ import annotations

import math
from typing import Any, Union

import numpy as np
import scipy.sparse as sp

#: A formatted label matrix: dense ``np.int8`` or CSR ``np.int8``, shape ``[N, M]``.
LabelMatrix = Union[np.ndarray, sp.csr_matrix]

#: Values of ``zero_division`` that every F-measure here accepts (scikit-learn's, less "warn").
ZERO_DIVISION_CHOICES = "0.0, 1.0 or nan"


def to_array(name: str, value: Any) -> np.ndarray | sp.csr_matrix:
    """``value`` as a numpy array or a CSR matrix, without checking shape or values."""
    if sp.issparse(value):
        return sp.csr_matrix(value)
    module = type(value).__module__
    if module.startswith("torch"):
        # Imported lazily: the numpy path of the metrics does not need torch.
        import torch

        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            if value.dtype in (torch.float16, torch.bfloat16):
                value = value.to(torch.float32)  # numpy has no bfloat16
            return value.numpy()
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"Expected `{name}` to be a rectangular [N, M] matrix, got {error}") from None
    return array


def check_matrix_shape(name: str, matrix: np.ndarray | sp.csr_matrix) -> None:
    """A 2-D matrix with at least one row and one column."""
    if matrix.ndim != 2:
        raise ValueError(f"Expected `{name}` to be a 2-D [N, M] matrix, got shape {tuple(matrix.shape)}")
    n_rows, n_labels = matrix.shape
    if n_rows == 0:
        raise ValueError(f"Expected `{name}` to have at least one row, got shape {tuple(matrix.shape)}")
    if n_labels == 0:
        raise ValueError(f"Expected `{name}` to have at least one label column, got shape {tuple(matrix.shape)}")


def check_numeric(name: str, matrix: np.ndarray | sp.csr_matrix) -> None:
    if matrix.dtype.kind not in "biuf":
        raise ValueError(f"Expected `{name}` to hold numbers, got dtype {matrix.dtype}")


def format_value(value: Any) -> str:
    """``2`` for 2.0 and for np.int8(2), ``0.5`` for 0.5, ``nan`` for NaN."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def validate_binary(name: str, matrix: np.ndarray | sp.csr_matrix) -> None:
    """Raise with the first (row-major) entry that is not 0 or 1; NaN counts as such an entry."""
    if sp.issparse(matrix):
        coo = matrix.tocoo()
        bad = (coo.data != 0) & (coo.data != 1)
        if bad.any():
            rows, cols, data = coo.row[bad], coo.col[bad], coo.data[bad]
            first = np.lexsort((cols, rows))[0]
            row, col, value = rows[first], cols[first], data[first]
        else:
            return
    else:
        if matrix.dtype.kind == "b":
            return
        bad = np.flatnonzero((matrix != 0) & (matrix != 1))
        if not bad.size:
            return
        row, col = divmod(int(bad[0]), matrix.shape[1])
        value = matrix[row, col]
    raise ValueError(f"Expected `{name}` to contain only 0/1, got {format_value(value)} at row {row}, column {col}")


def validate_labels(name: str, value: Any) -> np.ndarray | sp.csr_matrix:
    """``_validate`` for one label matrix: 2-D, non-empty, numeric, only 0/1."""
    matrix = to_array(name, value)
    check_matrix_shape(name, matrix)
    check_numeric(name, matrix)
    validate_binary(name, matrix)
    return matrix


def check_same_shape(name: str, matrix: Any, reference_name: str, reference: Any) -> None:
    if tuple(matrix.shape) != tuple(reference.shape):
        raise ValueError(
            f"Expected `{name}` to have the shape of `{reference_name}` {tuple(reference.shape)}, "
            f"got {tuple(matrix.shape)}"
        )


def format_labels(matrix: np.ndarray | sp.csr_matrix, sparse: bool) -> LabelMatrix:
    """``_format`` for a validated label matrix: dense or CSR ``np.int8``."""
    if sparse:
        matrix = sp.csr_matrix(matrix, dtype=np.int8)
        matrix.eliminate_zeros()
        matrix.sort_indices()
        return matrix
    return np.ascontiguousarray(matrix, dtype=np.int8)


def validate_and_format_pair(
    y_true: Any, y_pred: Any, names: tuple[str, str] = ("y_true", "y_pred")
) -> tuple[LabelMatrix, LabelMatrix]:
    """Validate two label matrices of the same shape and format them alike.

    Both come back dense ``np.int8`` unless either is sparse, then both CSR ``np.int8``.
    """
    true_name, pred_name = names
    y_true = validate_labels(true_name, y_true)
    y_pred = validate_labels(pred_name, y_pred)
    check_same_shape(pred_name, y_pred, true_name, y_true)
    sparse = sp.issparse(y_true) or sp.issparse(y_pred)
    return format_labels(y_true, sparse), format_labels(y_pred, sparse)


def validate_and_format_scores(
    y_score: Any, reference: LabelMatrix, *, allow_infinite: bool, name: str = "y_score"
) -> np.ndarray:
    """``_validate`` + ``_format`` for a score matrix: the shape of ``reference``, no NaN.

    Args:
        y_score: ``[N, M]`` scores (higher = more likely relevant).
        reference: the formatted ``y_true`` whose shape ``y_score`` must have.
        allow_infinite: whether +-inf is allowed (order-based top-k metrics take it;
            scikit-learn's ranking metrics reject it).

    Returns:
        ``[N, M]`` dense ``np.float64``.
    """
    scores = to_array(name, y_score)
    if sp.issparse(scores):
        scores = scores.toarray()
    check_matrix_shape(name, scores)
    check_numeric(name, scores)
    check_same_shape(name, scores, "y_true", reference)
    scores = np.ascontiguousarray(scores, dtype=np.float64)
    bad = np.isnan(scores) if allow_infinite else ~np.isfinite(scores)
    if bad.any():
        row, col = divmod(int(np.flatnonzero(bad)[0]), scores.shape[1])
        expected = "no NaN" if allow_infinite else "only finite values (scikit-learn's ranking metrics reject inf)"
        raise ValueError(f"Expected `{name}` to contain {expected}, got {scores[row, col]} at row {row}, column {col}")
    return scores


def validate_zero_division(zero_division: Any) -> float:
    """``zero_division`` as a float: 0.0, 1.0 or NaN (scikit-learn's choices, less "warn")."""
    if isinstance(zero_division, (bool, np.bool_)) or not isinstance(zero_division, (int, float, np.number)):
        raise ValueError(f"Expected `zero_division` to be {ZERO_DIVISION_CHOICES}, got {zero_division!r}")
    value = float(zero_division)
    if not (math.isnan(value) or value in (0.0, 1.0)):
        raise ValueError(f"Expected `zero_division` to be {ZERO_DIVISION_CHOICES}, got {zero_division!r}")
    return value


def validate_k(k: Any) -> int:
    """``k`` for top-k metrics: an integer >= 1."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"Expected `k` to be an integer >= 1, got {k!r}")
    if k < 1:
        raise ValueError(f"Expected `k` to be an integer >= 1, got {k}")
    return int(k)
