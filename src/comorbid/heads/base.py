"""Heads map encoder features ``h [B, d]`` (or per-label ``h [B, M, d]``) to a joint label distribution."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from comorbid.distributions.base import JointLabelDistribution
from comorbid.distributions.nonempty import NonEmpty


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The mean of ``values [B]``, weighted by ``weights [B]`` when given."""
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


class Head(nn.Module):
    """Base of every head: ``forward(h) -> JointLabelDistribution`` and ``nll(h, y)``.

    Subclasses set ``name``, build their parameters in ``__init__(input_dim, n_labels, **options)``
    and store every option in ``self.options`` so that ``config()`` can rebuild them.

    One training path: ``nll`` (what the trainer minimises) is the weighted mean of
    :meth:`row_losses`, by default ``-log p(y | x)`` under :meth:`distribution`. A head
    overrides ``row_losses`` only where its objective differs (the Ising pseudo-likelihood, the
    chain ensemble's per-chain likelihoods), and builds it from :meth:`conditioned` so that
    ``nonempty`` and ``temperature`` apply to it as to the prediction.

    ``nonempty`` (set by the model, default ``False``): the head's distribution is conditioned
    on at least one label (:class:`comorbid.distributions.nonempty.NonEmpty`), in training
    (``nll``: every likelihood objective is that of the conditioned model) and in prediction
    (``distribution``). The independent head's ``loss=`` option (a loss that is not a
    likelihood) trains on the logits and leaves ``nonempty`` to prediction. ``temperature``
    (set by calibration, default 1) divides its logits (:mod:`comorbid.calibration`).
    """

    name: ClassVar[str]
    nonempty: bool = False
    #: Divides every logit of the distribution (temperature scaling, set by calibration).
    temperature: float = 1.0
    #: True when the head also takes per-label features ``h [B, M, d]`` (from a per-label
    #: encoder such as CAML); its unary part then uses :func:`label_logits`.
    accepts_per_label: ClassVar[bool] = False
    #: True when the head takes ``descriptions=True``: the last ``n_labels`` features are the
    #: notes' match scores with the code descriptions (:mod:`comorbid.heads.descriptions`).
    accepts_descriptions: ClassVar[bool] = False
    #: True when the head's ``linear`` layer gives each code's logit ``u_j = W_j . h + b_j``
    #: (its label interactions, if any, come on top): what :mod:`comorbid.explain`'s
    #: ``"linear"`` method traces back to words. Not a powerset's (it scores label sets) nor a
    #: chain ensemble's (one row per chain and code).
    linear_logits: ClassVar[bool] = False

    def __init__(self, input_dim: int, n_labels: int, **options: Any):
        super().__init__()
        self.input_dim = input_dim
        self.n_labels = n_labels
        self.options = options

    def forward(self, h: torch.Tensor) -> JointLabelDistribution:  # pragma: no cover - abstract
        raise NotImplementedError

    def distribution(self, h: torch.Tensor) -> JointLabelDistribution:
        """The model's distribution for features ``h [B, d]``: ``conditioned(forward(h))``."""
        return self.conditioned(self(h))

    def conditioned(self, dist: JointLabelDistribution) -> JointLabelDistribution:
        """``dist`` tempered by ``temperature`` (when not 1) and conditioned on y != 0 when
        ``nonempty``: what turns ``forward``'s distribution (or a part of it) into the model's."""
        if self.temperature != 1.0:
            dist = dist.tempered(self.temperature)
        return NonEmpty(dist) if self.nonempty else dist

    def nll(self, h: torch.Tensor, y: torch.Tensor, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
        """The training objective: the mean of :meth:`row_losses` over the label sets
        ``y [B, M]``, weighted by ``sample_weight [B]`` when given."""
        return weighted_mean(self.row_losses(h, y), sample_weight)

    def row_losses(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each row's loss ``[B]``: ``-log p(y | x)`` under :meth:`distribution` (so given
        y != 0 when ``nonempty``)."""
        return -self.distribution(h).log_prob(y)

    def prepare(self, labels: np.ndarray, label_names: list[str] | None = None) -> None:
        """Use the training labels ``[N, M]`` (and their names) before training: label order,
        bias initialisation, label costs."""

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "input_dim": self.input_dim, "n_labels": self.n_labels, "options": self.options}


class Linear(nn.Linear):
    """``nn.Linear`` that also takes sparse CSR features ``[B, d]`` (the bag-of-words encoders
    without a hidden layer give those): ``x W^T + b`` by a sparse-dense product, so a batch
    costs O(nnz x out) instead of O(B x d x out), and the weights' gradient comes out dense as
    usual. The state dict is ``nn.Linear``'s (weight ``[out, d]``, bias ``[out]``)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.layout == torch.strided:
            return super().forward(h)
        out = torch.sparse.mm(h, self.weight.t())
        return out if self.bias is None else out + self.bias


def label_counts(labels) -> np.ndarray:
    """How often each label is on, ``[M]`` float64, for a dense 0/1 array or a scipy sparse matrix."""
    return np.asarray(labels.sum(0), dtype=np.float64).ravel()


def log_odds(labels: np.ndarray, smoothing: float = 1.0) -> torch.Tensor:
    """Smoothed log-odds of each label's frequency ``[M]``: a good initial bias (``labels`` a
    dense 0/1 array or a scipy sparse matrix)."""
    counts = label_counts(labels)
    positives = counts + smoothing
    negatives = labels.shape[0] - counts + smoothing
    return torch.as_tensor(np.log(positives / negatives), dtype=torch.get_default_dtype())


def label_logits(linear: nn.Linear, h: torch.Tensor) -> torch.Tensor:
    """The unary scores ``[B, M]`` of a head's ``linear`` layer (weight ``[M, d]``, bias ``[M]``).

    ``h [B, d]``: the usual ``W h + b``. ``h [B, M, d]`` (per-label features): label ``j`` is
    scored with its own row, ``w_j . h_j + b_j`` -- the output layer of CAML (Mullenbach et al.,
    "Explainable Prediction of Medical Codes from Clinical Text", NAACL 2018), so the same
    parameters serve both kinds of encoder.
    """
    if h.dim() == 2:
        return linear(h)
    if h.dim() == 3 and h.shape[1] == linear.out_features:
        return torch.einsum("bmd,md->bm", h, linear.weight) + linear.bias
    raise ValueError(
        f"Expected features [B, {linear.in_features}] or per-label [B, {linear.out_features}, "
        f"{linear.in_features}], got {list(h.shape)}"
    )
