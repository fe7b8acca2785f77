"""Numeric features: standardisation (fitted, missing values imputed) and a small MLP."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from comorbid.encoders.base import Encoder


class MLPEncoder(Encoder):
    """x -> (x - mean) / std (NaN -> 0, i.e. the training mean) -> [Linear -> ReLU -> Dropout] x L.

    Args:
        hidden: widths of the hidden layers; ``()`` makes the encoder the standardisation only
            (a linear model on top).
        dropout: dropout after each hidden layer.
    """

    name = "mlp"
    reads_text = False

    def __init__(self, hidden=(256,), dropout: float = 0.2):
        super().__init__(hidden=list(hidden), dropout=dropout)
        self.input_dim = 0
        self.register_buffer("mean", torch.zeros(0))
        self.register_buffer("scale", torch.ones(0))
        self.network: nn.Module = nn.Identity()

    def _build(self, input_dim: int) -> None:
        self.input_dim = input_dim
        self.mean = torch.zeros(input_dim)
        self.scale = torch.ones(input_dim)
        self._build_network(input_dim)

    def _build_network(self, width: int) -> None:
        """The trainable layers on ``width`` features (the standardised inputs here; subclasses
        that add features, :mod:`comorbid.encoders.nonlinear`, rebuild them on their width)."""
        layers: list[nn.Module] = []
        for size in self.options["hidden"]:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(self.options["dropout"])]
            width = size
        self.network = nn.Sequential(*layers)
        self.output_dim = width

    @staticmethod
    def _dense(inputs: Any) -> np.ndarray:
        return np.asarray(inputs.toarray() if sp.issparse(inputs) else inputs, dtype=np.float64)

    def fit(self, inputs: Any, labels: Any = None) -> "MLPEncoder":
        self.check_inputs(inputs)
        x = self._dense(inputs)
        self._build(x.shape[1])
        with np.errstate(invalid="ignore"), torch.no_grad():
            mean = np.nan_to_num(np.nanmean(x, axis=0)) if len(x) else np.zeros(x.shape[1])
            std = np.nan_to_num(np.nanstd(x, axis=0)) if len(x) else np.ones(x.shape[1])
            self.mean.copy_(torch.as_tensor(mean))
            self.scale.copy_(torch.as_tensor(np.where(std > 1e-12, std, 1.0)))
        return self

    def featurize(self, inputs: Any) -> torch.Tensor:
        self.check_inputs(inputs)
        return self.standardize(self._dense(inputs))

    def standardize(self, x: np.ndarray) -> torch.Tensor:
        """``x [B, input_dim]`` -> ``(x - mean) / scale`` with NaN (missing) -> 0."""
        x = torch.as_tensor(x, dtype=torch.get_default_dtype())
        if x.shape[1] != self.input_dim:
            raise ValueError(f"Expected {self.input_dim} features (as in training), got {x.shape[1]}")
        standardized = (x - self.mean) / self.scale
        return torch.nan_to_num(standardized, nan=0.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.network(features)

    def fitted_state(self) -> dict[str, Any]:
        return {"output_dim": self.output_dim, "input_dim": self.input_dim}

    def load_fitted_state(self, state: dict[str, Any]) -> None:
        self._build(state["input_dim"])
