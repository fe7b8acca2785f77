"""Per-row utilities ``u(y_hat, y)`` of a predicted label set against a true one.

A decoder predicts ``argmax_{y_hat} E_{y ~ p(y|x)} u(y_hat, y)`` (the Bayes-optimal decision
for the metric; Dembczynski, Waegeman, Cheng & Huellermeier, 2012, "On label dependence and
loss minimization in multi-label classification", Machine Learning 88), and tests brute-force
that argmax over all ``2^M`` sets. The mean of a utility over rows is the functional metric:

==============  =========================================  ===============================
name            u(a, b), sets a = y_hat, b = y              mean over rows equals
==============  =========================================  ===============================
``hamming``     1 - |a xor b| / M                           ``1 - hamming_loss``
``subset``      1[a = b]                                    ``subset_accuracy``
``instance-f1`` 2|a & b| / (|a| + |b|); 1 if both empty     ``instance_f1``
``jaccard``     |a & b| / |a | b|; 1 if both empty          ``jaccard``
==============  =========================================  ===============================

Precision@k is not listed: it scores a ranking, not a set.

Every utility takes tensors ``y_hat [..., M]`` and ``y [..., M]`` of 0/1 (bool, integer or
float) that broadcast over the leading dimensions, and returns ``[...]`` in the promoted
floating dtype of the inputs (the default dtype if neither is floating). Given fractional
values instead of 0/1 they return the natural relaxation (no check is made by the registry
functions; :func:`utility` checks).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
import torch

from comorbid.metrics._inputs import format_value, validate_and_format_pair

Utility = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _as_float(y_hat: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    y_hat, y = torch.as_tensor(y_hat), torch.as_tensor(y)
    floating = [t.dtype for t in (y_hat, y) if t.is_floating_point()]
    if not floating:
        dtype = torch.get_default_dtype()
    elif len(floating) == 1:
        dtype = floating[0]
    else:
        dtype = torch.promote_types(*floating)
    return y_hat.to(dtype), y.to(dtype)


def _safe_ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator, and 1 where the denominator is 0 (both sets empty).

    The inner ``where`` keeps the division itself free of 0/0, so no NaN reaches gradients.
    """
    empty = denominator == 0
    safe = torch.where(empty, torch.ones_like(denominator), denominator)
    return torch.where(empty, torch.ones_like(numerator), numerator / safe)


def hamming_utility(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1 - |y_hat xor y| / M``: the fraction of labels predicted right, ``[...]``."""
    y_hat, y = _as_float(y_hat, y)
    return 1.0 - (y_hat - y).abs().mean(-1)


def subset_utility(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1[y_hat = y]``: 1 for the exact set, else 0, ``[...]``."""
    y_hat, y = _as_float(y_hat, y)
    return (y_hat == y).all(-1).to(y_hat.dtype)


def instance_f1_utility(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``2 |y_hat & y| / (|y_hat| + |y|)``, 1 when both are empty, ``[...]``.

    The F-measure of one row (Dembczynski, Waegeman, Cheng & Huellermeier, 2011, "An exact
    algorithm for F-measure maximization", NeurIPS).
    """
    y_hat, y = _as_float(y_hat, y)
    return _safe_ratio(2.0 * (y_hat * y).sum(-1), y_hat.sum(-1) + y.sum(-1))


def jaccard_utility(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``|y_hat & y| / |y_hat | y|``, 1 when both are empty, ``[...]``."""
    y_hat, y = _as_float(y_hat, y)
    intersection = (y_hat * y).sum(-1)
    return _safe_ratio(intersection, y_hat.sum(-1) + y.sum(-1) - intersection)


def utility_from_counts(
    name: str, intersection: torch.Tensor, n_predicted: torch.Tensor, n_true: torch.Tensor, n_labels: int
) -> torch.Tensor:
    """The utility ``name`` from the three counts it depends on, elementwise.

    Every utility here is a function of ``|a & b|``, ``|a|``, ``|b|`` (and ``M``), so a whole
    candidates-by-samples table needs one matrix product (:func:`utility_table`) instead of a
    ``[K, S, M]`` broadcast: what lets minimum-Bayes-risk decoding scale to many labels.

    Args:
        name: one of ``UTILITIES``.
        intersection: ``|a & b|``, any shape.
        n_predicted: ``|a|``, broadcastable with ``intersection``.
        n_true: ``|b|``, broadcastable with ``intersection``.
        n_labels: ``M``.

    Returns:
        Floating tensor of the broadcast shape.
    """
    _check_name(name)
    i, a, b = (torch.as_tensor(t) for t in (intersection, n_predicted, n_true))
    dtype = torch.promote_types(torch.promote_types(i.dtype, a.dtype), b.dtype)
    dtype = dtype if dtype.is_floating_point else torch.get_default_dtype()
    i, a, b = i.to(dtype), a.to(dtype), b.to(dtype)
    if name == "hamming":
        return 1.0 - (a + b - 2.0 * i) / max(n_labels, 1)
    if name == "subset":
        return ((i == a) & (i == b)).to(dtype)
    if name == "instance-f1":
        return _safe_ratio(2.0 * i, a + b)
    return _safe_ratio(i, a + b - i)  # jaccard


def utility_table(name: str, y_hat: torch.Tensor, y: torch.Tensor, n_labels: int | None = None) -> torch.Tensor:
    """``u(y_hat_k, y_s)`` for every candidate and every sample, ``[K, S]``, by one matrix product.

    Args:
        name: one of ``UTILITIES``.
        y_hat: ``[K, M']`` 0/1 candidates.
        y: ``[S, M']`` 0/1 label sets.
        n_labels: the full number of labels ``M`` when ``M'`` columns are a subset holding every
            label that is set in any row (only ``"hamming"`` depends on it); default ``M'``.
    """
    y_hat, y = _as_float(y_hat, y)
    m = y_hat.shape[-1] if n_labels is None else n_labels
    return utility_from_counts(name, y_hat @ y.T, y_hat.sum(-1)[:, None], y.sum(-1)[None, :], m)


#: Every utility by name; decoders and the conformance suite iterate over this.
UTILITIES: dict[str, Utility] = {
    "hamming": hamming_utility,
    "subset": subset_utility,
    "instance-f1": instance_f1_utility,
    "jaccard": jaccard_utility,
}


def _check_name(name: str) -> Utility:
    try:
        return UTILITIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"Expected a utility name in {sorted(UTILITIES)}, got {name!r}") from None


def _check_binary(arg: str, value: torch.Tensor) -> None:
    if value.dtype == torch.bool:
        return
    bad = (value != 0) & (value != 1)
    if bad.any():
        where = bad.nonzero()[0].tolist()
        raise ValueError(f"Expected `{arg}` to contain only 0/1, got {format_value(value[tuple(where)])} at index {where}")


def utility(name: str, y_hat: torch.Tensor, y: torch.Tensor, *, validate_args: bool = True) -> torch.Tensor:
    """The utility ``name`` of each predicted set against each true set.

    Args:
        name: one of ``UTILITIES``: ``"hamming"``, ``"subset"``, ``"instance-f1"``,
            ``"jaccard"``.
        y_hat: ``[..., M]`` predicted label sets, 0/1.
        y: ``[..., M]`` true label sets, 0/1, broadcastable with ``y_hat``.
        validate_args: check the name, shapes and 0/1 values (skip in hot loops).

    Returns:
        ``[...]``: the broadcast leading shape.

    Example:
        >>> import torch
        >>> candidates = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0]])  # [3, M]
        >>> truth = torch.tensor([1, 0, 0])                                # [M]
        >>> utility("instance-f1", candidates, truth)
        tensor([0.0000, 1.0000, 0.6667])
    """
    function = _check_name(name)
    if validate_args:
        y_hat, y = torch.as_tensor(y_hat), torch.as_tensor(y)
        if y_hat.dim() == 0 or y.dim() == 0 or y_hat.shape[-1] != y.shape[-1]:
            raise ValueError(
                f"Expected `y_hat` and `y` with the same number of labels M in the last dimension, "
                f"got shapes {tuple(y_hat.shape)} and {tuple(y.shape)}"
            )
        try:
            torch.broadcast_shapes(y_hat.shape, y.shape)
        except RuntimeError:
            raise ValueError(
                f"Expected `y_hat` and `y` to broadcast over leading dimensions, "
                f"got shapes {tuple(y_hat.shape)} and {tuple(y.shape)}"
            ) from None
        _check_binary("y_hat", y_hat)
        _check_binary("y", y)
    return function(y_hat, y)


def mean_utility(name: str, y_hat: Any, y: Any) -> float:
    """Mean over rows of the utility ``name``: a metric, like those in :mod:`comorbid.metrics`.

    Equals ``1 - hamming_loss``, ``subset_accuracy``, ``instance_f1`` or ``jaccard`` (up to
    floating-point rounding of the sum) for ``"hamming"``, ``"subset"``, ``"instance-f1"``,
    ``"jaccard"``.

    Args:
        name: one of ``UTILITIES``.
        y_hat: ``[N, M]`` 0/1 predicted labels (numpy, list, scipy.sparse or torch).
        y: ``[N, M]`` 0/1 true labels.

    Returns:
        A float in [0, 1].
    """
    function = _check_name(name)
    y_true, y_pred = validate_and_format_pair(y, y_hat, names=("y", "y_hat"))
    if sp.issparse(y_true):
        y_true, y_pred = y_true.toarray(), y_pred.toarray()
    rows = function(torch.from_numpy(np.asarray(y_pred, dtype=np.float64)), torch.from_numpy(np.asarray(y_true, dtype=np.float64)))
    return float(rows.mean())
