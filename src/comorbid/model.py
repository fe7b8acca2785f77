"""A trained coder: encoder + head (a joint label distribution) + label names, saved safely.

A model directory holds ``model.safetensors`` (every tensor) and ``config.json`` (everything
else: label names, the encoder's fitted vocabulary, options, and the fitted state of decoders
tuned on held-out predictions, such as the thresholds of ``macro-f1``). Nothing is pickled, so loading a
model from someone else cannot run their code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from rich.progress import Progress
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from comorbid.data.dataset import MultiLabelDataset
from comorbid.decoders import Decoder, get_decoder
from comorbid.devices import batch_to, module_device, resolve_device
from comorbid.distributions.base import JointLabelDistribution
from comorbid.encoders import ENCODERS, get_encoder
from comorbid.heads import HEADS, BaggedHead, get_head
from comorbid.heads.bagging import bootstrap_rows
from comorbid.heldout import DEFAULT_FOLDS, HeldOut, held_out_predictions
from comorbid.io import (OutputError, kill_point, publish_directory, recover_directory, remove_leftovers,
                         resolve_link, staging_directory)
from comorbid.model_schema import check_config, check_tensors
from comorbid.training import TrainConfig, fit

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def train_config_for(encoder: str | None, **overrides: Any) -> TrainConfig:
    """A TrainConfig with ``encoder``'s recommended settings (``Encoder.train_defaults``, e.g.
    CAML's smaller learning rate and patience, the clinical encoder's L1 penalty), then
    ``overrides`` on top. ``None`` or ``"auto"``: TrainConfig's own defaults."""
    defaults = ENCODERS[encoder].train_defaults if encoder in ENCODERS else {}
    return TrainConfig(**{**defaults, **overrides})


def _build(cls, kind: str, *args, **options):
    """``cls(*args, **options)``, with a wrong option name reported as a ValueError."""
    try:
        return cls(*args, **options)
    except TypeError as error:
        raise ValueError(f"Bad option for the {cls.name} {kind}: {error}") from None


class MultiLabelModel:
    """Composes an encoder and a head; trains, predicts with any decoder, saves and loads.

    Args:
        model: head name (``chain``, the default, ``independent``, ...; see ``comorbid.heads.HEADS``).
        encoder: encoder name or ``"auto"`` (the clinical bag of words for texts, the MLP for
            feature matrices).
        head_options: keyword arguments of the head (e.g. ``{"loss": "focal"}``).
        encoder_options: keyword arguments of the encoder.
        train: a :class:`TrainConfig`, or a dict of TrainConfig fields to set on top of the
            encoder's recommended settings (:func:`train_config_for`, resolved once ``"auto"``
            has picked the encoder), or ``None`` for those settings alone.
        nonempty: condition the distribution on at least one label (training and prediction;
            :class:`comorbid.distributions.nonempty.NonEmpty`): ``True``, ``False``, or
            ``"auto"`` (the default: ``True`` when every training row has a label, as in
            clinical coding where every note gets a code).
        heldout_folds: folds of the held-out stage that tunes decoders such as ``macro-f1``
            and the temperature (see :mod:`comorbid.heldout`); it runs only when such a decoder
            is asked for or ``calibrate`` is set.
        ensemble: train this many copies of the head, each on its own bootstrap sample of the
            training rows, and predict their uniform mixture (bagging,
            :mod:`comorbid.heads.bagging`; 1: a single model). Needs an encoder without
            trainable parameters.
        calibrate: fit a temperature on the held-out stage (:mod:`comorbid.calibration`);
            ``calibration`` then holds the temperature and the held-out NLL and ECE before
            and after.
    """

    def __init__(
        self,
        model: str = "chain",
        encoder: str = "auto",
        head_options: dict[str, Any] | None = None,
        encoder_options: dict[str, Any] | None = None,
        train: TrainConfig | dict[str, Any] | None = None,
        heldout_folds: int = DEFAULT_FOLDS,
        nonempty: bool | str = "auto",
        calibrate: bool = False,
        ensemble: int = 1,
    ):
        get_head(model)  # fail early on an unknown name
        if nonempty not in (True, False, "auto"):
            raise ValueError(f"Expected nonempty True, False or 'auto', got {nonempty!r}")
        self.nonempty = nonempty
        self.calibrate = calibrate
        if ensemble < 1:
            raise ValueError(f"Expected ensemble >= 1 members, got {ensemble}")
        self.ensemble = ensemble
        self.calibration: dict[str, Any] = {}
        self.model_name = model
        self.encoder_name = encoder
        self.head_options = dict(head_options or {})
        self.encoder_options = dict(encoder_options or {})
        self.train = train
        self.train_config = self._train_config(encoder)
        self.encoder = None
        self.head = None
        self.label_names: list[str] = []
        #: the names of the training features (feature matrices with names; None for texts)
        self.feature_names: list[str] | None = None
        self.history: dict[str, Any] = {}
        self.heldout_folds = heldout_folds
        #: decoder spec -> what it learned on held-out predictions (JSON), e.g. thresholds
        self.decoder_states: dict[str, dict[str, Any]] = {}
        #: hashes of the training rows (:func:`comorbid.fingerprint.fingerprint`), saved when set
        self.training_fingerprint: dict[str, Any] | None = None

    # ------------------------------------------------------------------ training
    def _fresh_copy(self) -> "MultiLabelModel":
        """An untrained model of the same configuration (not calibrated: calibration is fitted
        on such models' held-out predictions)."""
        return MultiLabelModel(self.model_name, self.encoder_name, self.head_options, self.encoder_options,
                               self.train, nonempty=self.nonempty, heldout_folds=self.heldout_folds,
                               ensemble=self.ensemble)

    def _train_config(self, encoder) -> TrainConfig:
        """The TrainConfig: ``train`` itself, or its fields on top of ``encoder``'s defaults
        (an encoder name: its class's; a fitted encoder: its ``training_defaults()``)."""
        if isinstance(self.train, TrainConfig):
            return self.train
        if isinstance(encoder, str):
            return train_config_for(encoder, **(self.train or {}))
        return TrainConfig(**{**encoder.training_defaults(), **(self.train or {})})

    def fit(self, dataset: MultiLabelDataset, progress: Progress | None = None, description: str = "training",
            decoders: Sequence[str | Decoder] = ()):
        """Train on ``dataset``; then tune the ``decoders`` that need held-out predictions.

        Decoders with ``needs_fitting`` (``macro-f1``, ``micro-f1``) are fitted on out-of-fold
        predictions of ``dataset`` (:meth:`held_out`), which costs ``heldout_folds`` extra
        trainings (one, on ``(heldout_folds-1)/heldout_folds`` of the rows, beyond
        :data:`comorbid.heldout.ALL_FOLDS_MAX_CELLS` label cells); other decoders in the list
        cost nothing here.
        """
        if len(dataset) == 0:
            raise ValueError("Cannot train on an empty dataset")
        tuned = [get_decoder(spec) for spec in decoders]
        tuned = [decoder.bind(list(dataset.label_names)) for decoder in tuned if decoder.needs_fitting]
        encoder_cls = get_encoder(self.encoder_name, dataset.is_text)
        head_cls = get_head(self.model_name)
        if encoder_cls.per_label and not head_cls.accepts_per_label:
            takes = sorted(name for name, head in HEADS.items() if head.accepts_per_label)
            raise ValueError(
                f"The {encoder_cls.name} encoder gives per-label features [B, M, d], which the "
                f"{head_cls.name} model does not take; use one of: {', '.join(takes)}"
            )
        seed = self._train_config(encoder_cls.name).seed
        # Initial weights come from the training seed, drawn from a forked generator so that
        # fitting a model leaves the caller's global random state as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._fit_main(dataset, encoder_cls, head_cls, progress, description)
        self.decoder_states = {}
        self.calibration = {}
        if tuned or self.calibrate:
            heldout = self.held_out(dataset, progress, description)
            if self.calibrate and heldout is not None:
                from comorbid.calibration import fit_temperature

                calibration = fit_temperature(heldout, dataset)
                self.head.temperature = calibration.temperature
                self.calibration = calibration.to_dict()
            if tuned:
                self.fit_decoders(tuned, heldout)
        return self

    def _fit_main(self, dataset: MultiLabelDataset, encoder_cls, head_cls, progress, description) -> None:
        """Fit the encoder's preprocessing, then train the head (and the encoder's network)."""
        self.encoder = _build(encoder_cls, "encoder", **self.encoder_options)
        self.encoder.progress = progress
        descriptions = resolve_descriptions(self.head_options.get("descriptions", "auto"), head_cls, self.encoder,
                                            dataset.label_names)
        if descriptions is not None:
            self.encoder.use_descriptions(descriptions)
        head_options = {**self.head_options, "descriptions": descriptions is not None}
        if not head_cls.accepts_descriptions:
            head_options.pop("descriptions")
        self.encoder.fit(dataset.inputs, dataset.labels)
        self.encoder_name = encoder_cls.name
        # The fitted encoder knows how it trains best (e.g. a bag of words with a hidden layer
        # trains by Adam); the user's settings go on top.
        self.train_config = self._train_config(self.encoder)
        features = self.encoder.featurize(dataset.inputs)
        self.encoder.progress = None
        self.label_names = list(dataset.label_names)
        self.feature_names = None if dataset.is_text or dataset.feature_names is None else list(dataset.feature_names)
        if self.ensemble > 1:
            self.head = BaggedHead(self.encoder.output_dim, dataset.n_labels, self.model_name, self.ensemble,
                                   head_options)
            self.head.nonempty = self._resolve_nonempty(dataset.labels)
            self.history = self._fit_bagged(features, dataset, progress, description)
        else:
            self.head = _build(head_cls, "model", self.encoder.output_dim, dataset.n_labels, **head_options)
            self.head.nonempty = self._resolve_nonempty(dataset.labels)
            self.head.prepare(dataset.labels, self.label_names)
            self.history = fit(self.encoder, self.head, features, dataset.labels, self.train_config, progress,
                               description)

    def _fit_bagged(self, features: torch.Tensor, dataset: MultiLabelDataset, progress, description) -> dict:
        """Train each member of the bagged head on its own bootstrap sample (the encoder is fixed)."""
        if any(parameter.requires_grad for parameter in self.encoder.parameters()):
            raise ValueError(
                f"ensemble={self.ensemble} needs an encoder without trainable parameters (clinical, tfidf, "
                f"sentence with hidden=0, mlp with hidden=[]); the {self.encoder_name} encoder has some"
            )
        histories = []
        for index, member in enumerate(self.head.members):
            rows = bootstrap_rows(len(dataset), index, self.train_config.seed)
            member.prepare(dataset.labels[rows], self.label_names)
            config = dataclasses.replace(self.train_config, seed=self.train_config.seed + index)
            histories.append(fit(self.encoder, member, features[rows], dataset.labels[rows], config, progress,
                                 f"{description} member {index + 1}/{self.ensemble}"))
        return {"members": histories}

    def _resolve_nonempty(self, labels: np.ndarray) -> bool:
        empty_rows = np.flatnonzero(labels.sum(1) == 0) if labels.shape[1] else np.arange(len(labels))
        if self.nonempty == "auto":
            return len(empty_rows) == 0
        if self.nonempty and len(empty_rows):
            raise ValueError(
                f"nonempty=True, but {len(empty_rows)} training rows have no label (the first is row {empty_rows[0]})"
            )
        return bool(self.nonempty)

    def held_out(self, dataset: MultiLabelDataset, progress: Progress | None = None,
                 description: str = "training") -> HeldOut | None:
        """Out-of-fold predictions of ``dataset`` by fresh models of this configuration, seeded
        by the training seed (``None`` for a dataset too small to split)."""

        def train(part: MultiLabelDataset, fold: str):
            return self._fresh_copy().fit(part, progress, f"{description}{fold}")

        return held_out_predictions(train, dataset, self.heldout_folds, seed=self.train_config.seed)

    def fit_decoders(self, decoders: Sequence[str | Decoder], heldout: HeldOut | None) -> None:
        """Fit decoders on held-out predictions and keep their states (saved with the model).

        With no held-out predictions (a tiny dataset) they are fitted on an empty set, which
        gives their documented defaults (thresholds of 1/2).
        """
        m = len(self.label_names)
        marginals = heldout.marginals if heldout is not None else np.zeros((0, m))
        labels = heldout.labels if heldout is not None else np.zeros((0, m), dtype=np.int8)
        for decoder in decoders:
            decoder = get_decoder(decoder).bind(self.label_names)
            self.decoder_states[decoder.spec] = decoder.fit(marginals, labels).state()

    def decoder(self, spec: str | Decoder) -> Decoder:
        """The decoder ``spec`` ready for this model: bound to its labels, its fitted state loaded."""
        decoder = get_decoder(spec).bind(self.label_names)
        if decoder.needs_fitting:
            state = self.decoder_states.get(decoder.spec)
            if state is None:
                raise ValueError(
                    f"The {decoder.spec} decoder needs thresholds tuned on held-out data, and this model has none: "
                    f"train it with decoders=['{decoder.spec}'] (CLI: train --decode {decoder.spec})"
                )
            decoder.load_state(state)
        return decoder

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if self.head is None:
            raise RuntimeError("This model is not trained yet: call fit() or load()")

    @torch.no_grad()
    def distributions(self, dataset_or_inputs, batch_size: int = 256,
                      seed: int | None = None) -> Iterator[JointLabelDistribution]:
        """The model's distribution for consecutive batches of rows, its Monte Carlo draws seeded
        by ``seed`` (default the training seed): a row's answers do not depend on its batch."""
        self._check_fitted()
        inputs = self._inputs_of(dataset_or_inputs)
        n = len(inputs) if isinstance(inputs, list) else inputs.shape[0]
        self.encoder.eval()
        self.head.eval()
        device = module_device(self.head, self.encoder)
        for start in range(0, n, batch_size):
            chunk = inputs[start : start + batch_size]
            dist = self.head.distribution(self.encoder(batch_to(self.encoder.featurize(chunk), device)))
            yield dist.with_seed(self.train_config.seed if seed is None else seed)

    def to(self, device: str | torch.device) -> "MultiLabelModel":
        """Move the trained network to ``device`` (``"cpu"``, ``"cuda"``, ``"auto"``:
        :func:`comorbid.devices.resolve_device`) for prediction; batches follow it."""
        self._check_fitted()
        device = resolve_device(device)
        self.encoder.to(device)
        self.head.to(device)
        return self

    def _inputs_of(self, dataset_or_inputs):
        """The inputs of a dataset, feature columns reordered to the training order by name."""
        if not isinstance(dataset_or_inputs, MultiLabelDataset):
            return dataset_or_inputs
        dataset = dataset_or_inputs
        if dataset.is_text or self.feature_names is None or dataset.feature_names is None:
            return dataset.inputs  # texts, or a model saved without feature names: count check only
        return align_features(dataset.inputs, list(dataset.feature_names), self.feature_names)

    def predict(self, dataset_or_inputs, decoders: Sequence[str | Decoder] = ("hamming",), batch_size: int = 256,
                seed: int | None = None) -> dict[str, np.ndarray]:
        """Label sets ``[N, M]`` (0/1 int8) for each decoder, keyed by the decoder's spec."""
        return self._predict(dataset_or_inputs, decoders, False, batch_size, seed)[0]

    def predict_with_marginals(self, dataset_or_inputs, decoders: Sequence[str | Decoder] = ("hamming",),
                               batch_size: int = 256, seed: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """:meth:`predict` and :meth:`marginals` ``[N, M]`` from one distribution per batch (its
        cached marginals, e.g. a chain's Monte Carlo estimate, serve the decoders too)."""
        return self._predict(dataset_or_inputs, decoders, True, batch_size, seed)

    def predict_batches(self, dataset_or_inputs, decoders: Sequence[str | Decoder] = ("hamming",),
                        with_marginals: bool = False, batch_size: int = 256, seed: int | None = None
                        ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray | None]]:
        """For consecutive batches of rows, in input order: each decoder's label sets ``[B, M]``
        (0/1 int8, keyed by spec) and, if asked, the marginals ``[B, M]`` from the same
        distribution. What :meth:`predict` gathers; a caller can write rows as they come."""
        self._check_fitted()
        chosen = {spec if isinstance(spec, str) else spec.spec: self.decoder(spec) for spec in decoders}
        for dist in self.distributions(dataset_or_inputs, batch_size, seed):
            sets = {name: decoder.decode(dist).cpu().numpy().astype(np.int8) for name, decoder in chosen.items()}
            yield sets, dist.marginals().cpu().numpy() if with_marginals else None

    def _predict(self, dataset_or_inputs, decoders, with_marginals: bool, batch_size: int = 256,
                 seed: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        names = [spec if isinstance(spec, str) else spec.spec for spec in decoders]
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        marginals: list[np.ndarray] = []
        for sets, batch_marginals in self.predict_batches(dataset_or_inputs, decoders, with_marginals, batch_size,
                                                          seed):
            for name, part in sets.items():
                parts[name].append(part)
            if with_marginals:
                marginals.append(batch_marginals)
        m = len(self.label_names)
        sets = {name: np.concatenate(p) if p else np.zeros((0, m), np.int8) for name, p in parts.items()}
        if not with_marginals:
            return sets, None
        return sets, np.concatenate(marginals) if marginals else np.zeros((0, m))

    def marginals(self, dataset_or_inputs, batch_size: int = 256, seed: int | None = None) -> np.ndarray:
        """P(y_j = 1 | x) ``[N, M]``."""
        parts = [dist.marginals().cpu().numpy() for dist in self.distributions(dataset_or_inputs, batch_size, seed)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.label_names)))

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "format_version": FORMAT_VERSION,
            "label_names": self.label_names,
            "model": self.model_name,
            "nonempty": self.head.nonempty,
            "head": self.head.config(),
            "encoder": self.encoder.config(),
            "train": self.train_config.to_dict(),
            "history": self.history,
            "heldout_folds": self.heldout_folds,
            "ensemble": self.ensemble,
            "temperature": self.head.temperature,
            "calibration": self.calibration,
            "decoders": self.decoder_states,
            "feature_names": self.feature_names,
            **({"training_fingerprint": self.training_fingerprint} if self.training_fingerprint else {}),
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the model to ``directory``, replacing a model directory there only once the new one
        is complete (a half-written model is never left, and an interrupted save leaves a
        sibling that :meth:`load` or the next save recovers: :func:`comorbid.io.publish_directory`).

        Raises:
            OutputError: ``directory`` exists and is neither empty nor a model directory.
        """
        self._check_fitted()
        directory = resolve_link(directory)
        recover_directory(directory, is_model_directory)
        check_model_destination(directory)
        staging = staging_directory(directory)
        try:
            # CPU tensors: a model trained on a GPU loads anywhere
            tensors = {f"encoder.{k}": v.detach().cpu().contiguous() for k, v in self.encoder.state_dict().items()}
            tensors.update({f"head.{k}": v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()})
            save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"format": "comorbid"})
            kill_point("weights-written")
            (staging / CONFIG_FILE).write_text(json.dumps(self.config(), indent=1))
            kill_point("staging-written")
            publish_directory(staging, directory, MODEL_FILES)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        remove_leftovers(directory)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "MultiLabelModel":
        """Read a model written by :meth:`save` (safetensors + JSON only), checked against
        :mod:`comorbid.model_schema`: every error is a ValueError naming the file and key."""
        directory = Path(directory)
        recover_directory(directory, is_model_directory)
        config_path = directory / CONFIG_FILE
        weights_path = directory / WEIGHTS_FILE
        for path in (config_path, weights_path):
            if not path.is_file():
                raise ValueError(f"{directory} is not a comorbid model directory: {path.name} is missing")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{config_path} line {error.lineno}: not valid JSON ({error.msg})") from None
        except (UnicodeDecodeError, RecursionError) as error:
            raise ValueError(f"{config_path}: not valid JSON ({type(error).__name__})") from None
        check_config(config, config_path, HEADS, ENCODERS)
        head_config = config["head"]
        encoder_config = config["encoder"]
        with _rebuilding(config_path, "train"):
            train = TrainConfig(**config["train"])
        model = cls(
            model=config["model"],
            encoder=encoder_config["name"],
            head_options=head_config["options"],
            encoder_options=encoder_config["options"],
            train=train,
            nonempty=bool(config.get("nonempty", False)),
            heldout_folds=int(config.get("heldout_folds", DEFAULT_FOLDS)),
            calibrate=bool(config.get("calibration")),
            ensemble=int(config.get("ensemble", 1)),
        )
        with _rebuilding(config_path, "encoder"):
            model.encoder = ENCODERS[encoder_config["name"]].from_config(encoder_config)
        with _rebuilding(config_path, "head"):
            model.head = HEADS[head_config["name"]](head_config["input_dim"], head_config["n_labels"],
                                                    **head_config["options"])
        if head_config["input_dim"] != model.encoder.output_dim:
            raise ValueError(f"{config_path}: 'head.input_dim' must be the encoder's output_dim "
                             f"{model.encoder.output_dim}, got {head_config['input_dim']}")
        model.head.nonempty = model.nonempty
        model.head.temperature = float(config.get("temperature", 1.0))
        model.calibration = dict(config.get("calibration", {}))
        try:
            tensors = load_file(str(weights_path))
        except (SafetensorError, OSError, ValueError) as error:
            raise ValueError(f"{weights_path}: the weights file is corrupt or truncated ({error})") from None
        expected = {f"encoder.{k}": v for k, v in model.encoder.state_dict().items()}
        expected.update({f"head.{k}": v for k, v in model.head.state_dict().items()})
        check_tensors(tensors, expected, weights_path)
        try:
            model.encoder.load_state_dict({k[len("encoder.") :]: v for k, v in tensors.items()
                                           if k.startswith("encoder.")}, strict=True)
            model.head.load_state_dict({k[len("head.") :]: v for k, v in tensors.items() if k.startswith("head.")},
                                       strict=True)
        except RuntimeError as error:
            raise ValueError(f"{weights_path}: {str(error).strip().splitlines()[-1].strip()}") from None
        model.encoder.eval()
        model.head.eval()
        model.label_names = list(config["label_names"])
        model.feature_names = config.get("feature_names")
        input_dim = getattr(model.encoder, "input_dim", None)
        if model.feature_names is not None and input_dim is not None and len(model.feature_names) != input_dim:
            raise ValueError(f"{config_path}: 'feature_names' must name the encoder's {input_dim} inputs, "
                             f"got {len(model.feature_names)} names")
        model.history = config.get("history", {})
        model.decoder_states = config.get("decoders", {})
        model.training_fingerprint = config.get("training_fingerprint")
        for spec in model.decoder_states:
            with _rebuilding(config_path, f"decoders.{spec}"):
                model.decoder(spec)
        return model


MODEL_FILES = (WEIGHTS_FILE, CONFIG_FILE)


def resolve_descriptions(option, head_cls, encoder, label_names) -> list[str] | None:
    """The code descriptions a model matches notes against (:mod:`comorbid.heads.descriptions`),
    or ``None`` for none.

    ``option`` is the head option ``descriptions``: ``False``, ``True`` (required: a ValueError
    says why it cannot apply) or ``"auto"`` (on when it can apply and
    :data:`comorbid.heads.descriptions.BY_DEFAULT`). It applies to a head that takes
    descriptions (independent, chain), an encoder that matches them (the bag-of-words
    encoders, without a hidden layer) and labels that are ICD codes with descriptions
    (:func:`comorbid.icd.describe_labels`).
    """
    from comorbid.heads.descriptions import BY_DEFAULT
    from comorbid.icd import describe_labels

    if option not in (True, False, "auto"):
        raise ValueError(f"Expected the option `descriptions` True, False or 'auto', got {option!r}")
    if option is False or (option == "auto" and not BY_DEFAULT):
        return None
    reasons = []
    if not head_cls.accepts_descriptions:
        reasons.append(f"the {head_cls.name} model does not take them (independent and chain do)")
    if not hasattr(encoder, "use_descriptions") or encoder.options.get("hidden"):
        reasons.append(f"the {encoder.name} encoder does not match them (clinical and tfidf without hidden do)")
    descriptions = None if reasons else describe_labels(list(label_names))
    if not reasons and descriptions is None:
        reasons.append("the labels are not ICD-9-CM or ICD-10-CM codes with descriptions")
    if reasons:
        if option is True:
            raise ValueError("Cannot use code descriptions: " + "; ".join(reasons))
        return None
    return descriptions


class _rebuilding:
    """Context: errors while rebuilding part ``key`` of the model from ``config_path`` become a
    ValueError naming both (a wrong option, a vocabulary of the wrong type)."""

    def __init__(self, config_path: Path, key: str):
        self.config_path, self.key = config_path, key

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is not None and issubclass(kind, (KeyError, TypeError, ValueError, IndexError, OverflowError)):
            detail = str(error).strip().splitlines()[0] if str(error).strip() else kind.__name__
            if kind is KeyError:
                detail = f"key {error} is missing"
            raise ValueError(f"{self.config_path}: '{self.key}' does not rebuild: {detail}") from None
        return False


def is_model_directory(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a model written by :meth:`MultiLabelModel.save` (its weights file
    and a config.json with a ``format_version``); the contents are not checked further."""
    directory = Path(directory)
    if not (directory / WEIGHTS_FILE).is_file() or not (directory / CONFIG_FILE).is_file():
        return False
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(config, dict) and "format_version" in config


def check_model_destination(directory: str | os.PathLike) -> None:
    """Refuse, before any work, to write a model over something that is not one.

    ``directory`` may be missing, an empty directory, or a model directory holding only the
    model's two files (:func:`is_model_directory`); anything else raises :class:`OutputError`
    (nothing there is deleted).
    """
    directory = resolve_link(directory)
    if not os.path.lexists(directory):
        return
    if not directory.is_dir():
        raise OutputError(f"{directory}: exists and is not a directory; not replacing it with a model")
    entries = sorted(entry.name for entry in directory.iterdir())
    if not entries:
        return
    if not is_model_directory(directory):
        raise OutputError(f"{directory}: exists, is not empty and is not a comorbid model directory "
                          f"(it holds {', '.join(entries[:5])}{', ...' if len(entries) > 5 else ''}); "
                          "not replacing it")
    foreign = [name for name in entries if name not in MODEL_FILES]
    if foreign:
        raise OutputError(f"{directory}: holds files comorbid did not write ({', '.join(foreign[:5])}); "
                          "not replacing it")


def align_features(inputs, names: list[str], expected: list[str]):
    """The feature matrix ``inputs [N, D]`` (columns ``names``) with its columns in the order ``expected``.

    Raises:
        ValueError: the names are not a permutation of ``expected`` (lists a few missing and extra).
    """
    if names == expected:
        return inputs
    if len(set(names)) == len(names) and set(names) == set(expected):
        index = {name: j for j, name in enumerate(names)}
        return inputs[:, [index[name] for name in expected]]
    known, wanted = set(names), set(expected)
    missing = [name for name in expected if name not in known]
    extra = [name for name in names if name not in wanted]

    def few(items: list[str]) -> str:
        return ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")

    parts = ([f"missing {few(missing)}"] if missing else []) + ([f"unknown {few(extra)}"] if extra else [])
    raise ValueError(f"The data's features do not match the model's {len(expected)} training features: "
                     + ("; ".join(parts) or "repeated feature names"))
