"""Encoders: inputs (texts or feature matrices) -> features ``h [B, d]`` for a head.

An encoder has two parts: ``featurize`` (fixed preprocessing, fitted once on the training inputs
by ``fit``: TF-IDF, standardisation, a vocabulary, frozen sentence embeddings) and ``forward``
(the trainable network on those features). Fitted state that is not a tensor goes into
``config()`` (JSON); tensors go into the state dict (safetensors). ``from_config(config)``
rebuilds an encoder whose state dict then loads exactly.

Per-label encoders (``per_label = True``, e.g. CAML's label-wise attention) give one feature
vector per label, ``h [B, M, d]``; ``fit`` then receives the training labels ``[N, M]`` to know
``M``, and only heads with ``accepts_per_label`` can sit on them (their unary part scores label
``j`` with its own weight vector: :func:`comorbid.heads.base.label_logits`).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


class Encoder(nn.Module):
    name: ClassVar[str]
    #: True when the encoder reads texts, False when it reads feature matrices.
    reads_text: ClassVar[bool]
    #: True when ``forward`` gives per-label features ``[B, M, d]`` instead of ``[B, d]``.
    per_label: ClassVar[bool] = False
    #: TrainConfig fields this encoder trains best with (see ``comorbid.model.train_config_for``).
    train_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any):
        super().__init__()
        self.options = options
        self.output_dim = 0
        #: A rich Progress that ``MultiLabelModel.fit`` lends for long featurisations (not saved).
        self.progress = None

    def training_defaults(self) -> dict[str, Any]:
        """TrainConfig fields for this (fitted) encoder: ``train_defaults``, unless the fitted
        configuration calls for others (a bag of words with a hidden layer trains by Adam)."""
        return dict(self.train_defaults)

    def fit(self, inputs: Any, labels: Any = None) -> "Encoder":  # pragma: no cover - abstract
        """Fit the preprocessing on the training ``inputs``; ``labels [N, M]`` (optional, used
        by per-label encoders for ``M``)."""
        raise NotImplementedError

    def featurize(self, inputs: Any) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_featurize(self, inputs: Any, labels: Any = None):
        """``fit(inputs, labels)`` then ``featurize(inputs)``: the training features. An encoder
        that computes them while fitting (the bag of words) returns those instead of a second
        pass over the texts."""
        return self.fit(inputs, labels).featurize(inputs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "options": self.options, "state": self.fitted_state()}

    def fitted_state(self) -> dict[str, Any]:
        """JSON-able fitted state (vocabularies, dimensions) that ``load_fitted_state`` restores."""
        return {"output_dim": self.output_dim}

    def load_fitted_state(self, state: dict[str, Any]) -> None:
        self.output_dim = state["output_dim"]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Encoder":
        encoder = cls(**config["options"])
        encoder.load_fitted_state(config["state"])
        return encoder

    def check_inputs(self, inputs: Any) -> None:
        is_text = isinstance(inputs, list)
        if is_text != self.reads_text:
            want = "texts" if self.reads_text else "a feature matrix"
            got = "texts" if is_text else "a feature matrix"
            raise ValueError(f"The {self.name} encoder reads {want}, but the data holds {got}")


def to_torch(features: Any) -> torch.Tensor:
    """Features as a tensor: a scipy sparse matrix ``[B, d]`` becomes a sparse CSR tensor of the
    default float type (sharing nothing with the matrix), anything else passes through."""
    if not sp.issparse(features):
        return features
    csr = features.tocsr()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)), torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data.astype(np.float32)).to(torch.get_default_dtype()), size=csr.shape,
            check_invariants=False,
        )
