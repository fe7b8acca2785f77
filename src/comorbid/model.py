"""A trained coder: encoder + head (a joint label distribution) + label names, saved safely.

A model directory holds ``model.safetensors`` (every tensor) and ``config.json`` (everything
else: label names, the encoder's fitted vocabulary, options). Nothing is pickled, so loading a
model from someone else cannot run their code.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from rich.progress import Progress
from safetensors.torch import load_file, save_file

from comorbid.data.dataset import MultiLabelDataset
from comorbid.decoders import Decoder, get_decoder
from comorbid.distributions.base import JointLabelDistribution
from comorbid.encoders import ENCODERS, get_encoder
from comorbid.heads import HEADS, get_head
from comorbid.training import TrainConfig, fit

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def train_config_for(encoder: str, **overrides: Any) -> TrainConfig:
    """A TrainConfig with ``encoder``'s recommended settings (``Encoder.train_defaults``, e.g.
    CAML's smaller learning rate and patience), then ``overrides`` on top."""
    defaults = ENCODERS[encoder].train_defaults if encoder in ENCODERS else {}
    return TrainConfig(**{**defaults, **overrides})


class MultiLabelModel:
    """Composes an encoder and a head; trains, predicts with any decoder, saves and loads.

    Args:
        model: head name (``independent``, ``chain``, ...; see ``comorbid.heads.HEADS``).
        encoder: encoder name or ``"auto"`` (TF-IDF for texts, MLP for feature matrices).
        head_options: keyword arguments of the head (e.g. ``{"loss": "focal"}``).
        encoder_options: keyword arguments of the encoder.
        train: a :class:`TrainConfig`; default :func:`train_config_for` the encoder.
    """

    def __init__(
        self,
        model: str = "independent",
        encoder: str = "auto",
        head_options: dict[str, Any] | None = None,
        encoder_options: dict[str, Any] | None = None,
        train: TrainConfig | None = None,
    ):
        get_head(model)  # fail early on an unknown name
        self.model_name = model
        self.encoder_name = encoder
        self.head_options = dict(head_options or {})
        self.encoder_options = dict(encoder_options or {})
        self.train_config = train or train_config_for(encoder)
        self.encoder = None
        self.head = None
        self.label_names: list[str] = []
        self.history: dict[str, Any] = {}

    # ------------------------------------------------------------------ training
    def fit(self, dataset: MultiLabelDataset, progress: Progress | None = None, description: str = "training"):
        if len(dataset) == 0:
            raise ValueError("Cannot train on an empty dataset")
        torch.manual_seed(self.train_config.seed)  # initial weights of encoder and head
        encoder_cls = get_encoder(self.encoder_name, dataset.is_text)
        head_cls = get_head(self.model_name)
        if encoder_cls.per_label and not head_cls.accepts_per_label:
            takes = sorted(name for name, head in HEADS.items() if head.accepts_per_label)
            raise ValueError(
                f"The {encoder_cls.name} encoder gives per-label features [B, M, d], which the "
                f"{head_cls.name} model does not take; use one of: {', '.join(takes)}"
            )
        self.encoder = encoder_cls(**self.encoder_options)
        self.encoder.progress = progress
        self.encoder.fit(dataset.inputs, dataset.labels)
        self.encoder_name = encoder_cls.name
        features = self.encoder.featurize(dataset.inputs)
        self.encoder.progress = None
        self.head = head_cls(self.encoder.output_dim, dataset.n_labels, **self.head_options)
        self.head.prepare(dataset.labels, list(dataset.label_names))
        self.label_names = list(dataset.label_names)
        self.history = fit(self.encoder, self.head, features, dataset.labels, self.train_config, progress, description)
        return self

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if self.head is None:
            raise RuntimeError("This model is not trained yet: call fit() or load()")

    @torch.no_grad()
    def distributions(self, dataset_or_inputs, batch_size: int = 256) -> Iterator[JointLabelDistribution]:
        """The model's distribution for consecutive batches of rows."""
        self._check_fitted()
        inputs = dataset_or_inputs.inputs if isinstance(dataset_or_inputs, MultiLabelDataset) else dataset_or_inputs
        n = len(inputs) if isinstance(inputs, list) else inputs.shape[0]
        self.encoder.eval()
        self.head.eval()
        for start in range(0, n, batch_size):
            chunk = inputs[start : start + batch_size]
            yield self.head(self.encoder(self.encoder.featurize(chunk)))

    def predict(self, dataset_or_inputs, decoders: Sequence[str | Decoder] = ("hamming",)) -> dict[str, np.ndarray]:
        """Label sets ``[N, M]`` (0/1 int8) for each decoder, keyed by the decoder's spec."""
        chosen = {str(spec) if isinstance(spec, str) else spec.name: get_decoder(spec) for spec in decoders}
        parts: dict[str, list[np.ndarray]] = {name: [] for name in chosen}
        for dist in self.distributions(dataset_or_inputs):
            for name, decoder in chosen.items():
                parts[name].append(decoder.decode(dist).cpu().numpy().astype(np.int8))
        m = len(self.label_names)
        return {name: np.concatenate(p) if p else np.zeros((0, m), np.int8) for name, p in parts.items()}

    def marginals(self, dataset_or_inputs) -> np.ndarray:
        """P(y_j = 1 | x) ``[N, M]``."""
        parts = [dist.marginals().cpu().numpy() for dist in self.distributions(dataset_or_inputs)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.label_names)))

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "format_version": FORMAT_VERSION,
            "label_names": self.label_names,
            "model": self.model_name,
            "head": self.head.config(),
            "encoder": self.encoder.config(),
            "train": self.train_config.to_dict(),
            "history": self.history,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the model to ``directory`` atomically (a half-written model is never left)."""
        self._check_fitted()
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            tensors = {f"encoder.{k}": v.contiguous() for k, v in self.encoder.state_dict().items()}
            tensors.update({f"head.{k}": v.contiguous() for k, v in self.head.state_dict().items()})
            save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"format": "comorbid"})
            (staging / CONFIG_FILE).write_text(json.dumps(self.config(), indent=1))
            if directory.exists():
                old = directory.with_name(f".{directory.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                directory.rename(old)
                staging.rename(directory)
                shutil.rmtree(old, ignore_errors=True)
            else:
                staging.rename(directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "MultiLabelModel":
        """Read a model written by :meth:`save` (safetensors + JSON only)."""
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        weights_path = directory / WEIGHTS_FILE
        for path in (config_path, weights_path):
            if not path.is_file():
                raise ValueError(f"{directory} is not a comorbid model directory: {path.name} is missing")
        try:
            config = json.loads(config_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{config_path} line {error.lineno}: not valid JSON ({error.msg})") from None
        if config.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{config_path}: expected format_version {FORMAT_VERSION}, got {config.get('format_version')}")
        head_config = config["head"]
        encoder_config = config["encoder"]
        if encoder_config["name"] not in ENCODERS or head_config["name"] not in HEADS:
            raise ValueError(f"{config_path}: unknown encoder or head {encoder_config['name']}/{head_config['name']}")
        model = cls(
            model=config["model"],
            encoder=encoder_config["name"],
            head_options=head_config["options"],
            encoder_options=encoder_config["options"],
            train=TrainConfig(**config["train"]),
        )
        model.encoder = ENCODERS[encoder_config["name"]].from_config(encoder_config)
        model.head = HEADS[head_config["name"]](head_config["input_dim"], head_config["n_labels"], **head_config["options"])
        tensors = load_file(str(weights_path))
        model.encoder.load_state_dict({k[len("encoder.") :]: v for k, v in tensors.items() if k.startswith("encoder.")})
        model.head.load_state_dict({k[len("head.") :]: v for k, v in tensors.items() if k.startswith("head.")})
        model.encoder.eval()
        model.head.eval()
        model.label_names = list(config["label_names"])
        model.history = config.get("history", {})
        return model
