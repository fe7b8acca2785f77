"""A trained coder: encoder + head (a joint label distribution) + label names, saved safely.

A model directory holds ``model.safetensors`` (every tensor) and ``config.json`` (everything
else: label names, the encoder's fitted vocabulary, options, and the fitted state of decoders
tuned on held-out predictions, such as the thresholds of ``macro-f1``). Nothing is pickled, so loading a
model from someone else cannot run their code.
"""

from __future__ import annotations

import inspect
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
from sklearn.base import BaseEstimator, clone

from comorbid.data.dataset import MultiLabelDataset
from comorbid.decoders import Decoder, get_decoder
from comorbid.devices import batch_to, module_device, resolve_device
from comorbid.distributions.base import JointLabelDistribution
from comorbid.encoders import ENCODERS, get_encoder
from comorbid.heads import HEADS, get_head
from comorbid.heldout import DEFAULT_FOLDS, HeldOut, held_out_predictions
from comorbid.io import (OutputError, kill_point, publish_directory, recover_directory, remove_leftovers,
                         resolve_link, staging_directory)
from comorbid.model_schema import check_config, check_tensors
from comorbid.spec import ModelSpec
from comorbid.training import TrainConfig, train_head

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def train_config_for(encoder: str | None, **overrides: Any) -> TrainConfig:
    """A TrainConfig with ``encoder``'s recommended settings (``Encoder.train_defaults``, e.g.
    CAML's smaller learning rate and patience, the clinical encoder's L1 penalty), then
    ``overrides`` on top. ``None`` or ``"auto"``: TrainConfig's own defaults."""
    return ModelSpec(train=overrides).train_config(encoder or "auto")


def _build(cls, kind: str, *args, **options):
    """``cls(*args, **options)``, with a wrong option name reported as a ValueError."""
    try:
        return cls(*args, **options)
    except TypeError as error:
        raise ValueError(f"Bad option for the {cls.name} {kind}: {error}") from None


class MultiLabelModel(BaseEstimator):
    """Composes an encoder and a head; trains, predicts with any decoder, saves and loads.

    It follows scikit-learn's estimator contract: ``__init__`` stores its arguments unchanged,
    :meth:`fit` checks them (:class:`comorbid.spec.ModelSpec`) and sets the fitted attributes
    (ending in ``_``), ``get_params``/``set_params``/``sklearn.base.clone`` read the parameters
    from this signature. :meth:`from_spec` makes one from a spec.

    Args:
        model: head name (``chain``, the default, ``independent``, ...; see ``comorbid.heads.HEADS``).
        encoder: encoder name or ``"auto"`` (the clinical bag of words for texts, the MLP for
            feature matrices).
        head_options: keyword arguments of the head (e.g. ``{"loss": "focal"}``).
        encoder_options: keyword arguments of the encoder.
        train: a :class:`TrainConfig`, or a dict of TrainConfig fields to set on top of the
            encoder's recommended settings (:func:`train_config_for`, resolved once ``"auto"``
            has picked the encoder), or ``None`` for those settings alone.
        heldout_folds: folds of the held-out stage that tunes decoders such as ``macro-f1``
            and the temperature (see :mod:`comorbid.heldout`); it runs only when such a decoder
            is asked for or ``calibrate`` is set.
        nonempty: condition the distribution on at least one label (training and prediction;
            :class:`comorbid.distributions.nonempty.NonEmpty`): ``True``, ``False``, or
            ``"auto"`` (the default: ``True`` when every training row has a label, as in
            clinical coding where every note gets a code).
        calibrate: fit a temperature on the held-out stage (:mod:`comorbid.calibration`);
            ``calibration_`` then holds the temperature and the held-out NLL and ECE before
            and after.
        ensemble: train this many copies of the head, each on its own bootstrap sample of the
            training rows, and predict their uniform mixture (bagging,
            :mod:`comorbid.heads.bagging`; 1: a single model). Needs an encoder without
            trainable parameters.

    Attributes:
        encoder_: the fitted encoder.
        head_: the trained head (its ``nonempty`` and ``temperature`` set).
        label_names_: the training labels' names ``[M]``.
        feature_names_: the names of the training features (feature matrices with names; ``None``
            for texts).
        train_config_: the :class:`TrainConfig` it was trained with (the encoder's settings and
            ``train`` on top).
        history_: what training reported (losses, epochs; per member for an ensemble).
        calibration_: the fitted temperature and held-out NLL/ECE before and after (empty unless
            ``calibrate``).
        decoder_states_: decoder spec -> what it learned on held-out predictions (JSON), e.g.
            thresholds.
        training_fingerprint_: hashes of the training rows (:func:`comorbid.fingerprint.fingerprint`)
            or ``None``; fit leaves it to the caller (hashing every row has a cost), saved when set.
        auto_selection_: what ``model="auto"`` tried and chose (:class:`comorbid.selection.AutoModel`
            sets it; empty otherwise), saved in config.json as ``auto_selection`` when set.
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
        self.model = model
        self.encoder = encoder
        self.head_options = head_options
        self.encoder_options = encoder_options
        self.train = train
        self.heldout_folds = heldout_folds
        self.nonempty = nonempty
        self.calibrate = calibrate
        self.ensemble = ensemble

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> "MultiLabelModel":
        """An untrained model of the configuration ``spec``."""
        return cls(**spec.arguments())

    def spec(self) -> ModelSpec:
        """The parameters as a :class:`ModelSpec`, checked (a ``ParameterError`` names the bad one)."""
        return ModelSpec(**self.get_params(deep=False))

    @property
    def encoder_name(self) -> str:
        """The encoder's name: the one ``"auto"`` chose once fitted."""
        return self.encoder_.name if "encoder_" in self.__dict__ else self.encoder

    # ------------------------------------------------------------------ training
    def fit(self, dataset: MultiLabelDataset, progress: Progress | None = None, description: str = "training",
            decoders: Sequence[str | Decoder] = ()):
        """Train on ``dataset``; then tune the ``decoders`` that need held-out predictions.

        The whole fit path: check the parameters (:meth:`spec`), fit the encoder's preprocessing,
        build the head and train it (:func:`comorbid.training.train_head`; a bag of heads member
        by member), seeded by the training seed inside ``torch.random.fork_rng``; then the
        held-out stage, if asked for: the temperature (``calibrate``) and the decoders.

        Decoders with ``needs_fitting`` (``macro-f1``, ``micro-f1``) are fitted on out-of-fold
        predictions of ``dataset`` (:meth:`held_out`), which costs ``heldout_folds`` extra
        trainings (one, on ``(heldout_folds-1)/heldout_folds`` of the rows, beyond
        :data:`comorbid.heldout.ALL_FOLDS_MAX_CELLS` label cells); other decoders in the list
        cost nothing here.
        """
        spec = self.spec()
        if len(dataset) == 0:
            raise ValueError("Cannot train on an empty dataset")
        tuned = [get_decoder(decoder) for decoder in decoders]
        tuned = [decoder.bind(list(dataset.label_names)) for decoder in tuned if decoder.needs_fitting]
        encoder_cls = get_encoder(spec.encoder, dataset.is_text)
        head_name, head_options = spec.head()
        head_cls = get_head(spec.model)
        if encoder_cls.per_label and not head_cls.accepts_per_label:
            takes = sorted(name for name, head in HEADS.items() if head.accepts_per_label)
            raise ValueError(
                f"The {encoder_cls.name} encoder gives per-label features [B, M, d], which the "
                f"{head_cls.name} model does not take; use one of: {', '.join(takes)}"
            )
        for name in FITTED_ATTRIBUTES:  # a refit that fails leaves the model unfitted, not stale
            self.__dict__.pop(name, None)
        label_names = list(dataset.label_names)
        # Initial weights come from the training seed, drawn from a forked generator so that
        # fitting a model leaves the caller's global random state as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.train_config(encoder_cls.name).seed)
            encoder = _build(encoder_cls, "encoder", **(spec.encoder_options or {}))
            encoder.progress = progress
            # code descriptions (comorbid.heads.descriptions): matched by the encoder, blended in the head
            described = dict(spec.head_options or {})
            descriptions = resolve_descriptions(described.get("descriptions", "auto"), head_cls, encoder, label_names)
            if descriptions is not None:
                encoder.use_descriptions(descriptions)
            described.pop("descriptions", None)  # the heads' default: none
            if descriptions is not None:
                described["descriptions"] = True
            head_name, head_options = dataclasses.replace(spec, head_options=described).head()
            # fit and the training features in one pass where the encoder can (the bag of words)
            features = encoder.fit_featurize(dataset.inputs, dataset.labels)
            # The fitted encoder knows how it trains best (e.g. a bag of words with a hidden layer
            # trains by Adam); the user's settings go on top.
            train_config = spec.train_config(encoder)
            encoder.progress = None
            head = _build(HEADS[head_name], "model", encoder.output_dim, dataset.n_labels, **head_options)
            head.nonempty = spec.nonempty_for(dataset.labels)
            history = train_head(encoder, head, features, dataset.labels, label_names, train_config, progress,
                                 description)
        self.encoder_, self.head_, self.label_names_, self.train_config_, self.history_ = (
            encoder, head, label_names, train_config, history)
        self.feature_names_ = None if dataset.is_text or dataset.feature_names is None else list(dataset.feature_names)
        self.training_fingerprint_ = None  # the caller's to set (`comorbid train` does), saved when set
        self.decoder_states_ = {}
        self.calibration_ = {}
        self.auto_selection_ = {}  # AutoModel's to set
        if tuned or spec.calibrate:
            heldout = self.held_out(dataset, progress, description)
            if spec.calibrate and heldout is not None:
                from comorbid.calibration import fit_temperature

                calibration = fit_temperature(heldout, dataset)
                self.head_.temperature = calibration.temperature
                self.calibration_ = calibration.to_dict()
            if tuned:
                self.fit_decoders(tuned, heldout)
        return self

    def held_out(self, dataset: MultiLabelDataset, progress: Progress | None = None,
                 description: str = "training") -> HeldOut | None:
        """Out-of-fold predictions of ``dataset`` by fresh models of this configuration (not
        calibrated: calibration is fitted on them), seeded by the training seed (``None`` for a
        dataset too small to split)."""

        def train(part: MultiLabelDataset, fold: str):
            return clone(self).set_params(calibrate=False).fit(part, progress, f"{description}{fold}")

        return held_out_predictions(train, dataset, self.heldout_folds, seed=self.train_config_.seed)

    def fit_decoders(self, decoders: Sequence[str | Decoder], heldout: HeldOut | None) -> None:
        """Fit decoders on held-out predictions and keep their states (saved with the model).

        With no held-out predictions (a tiny dataset) they are fitted on an empty set, which
        gives their documented defaults (thresholds of 1/2).
        """
        m = len(self.label_names_)
        marginals = heldout.marginals if heldout is not None else np.zeros((0, m))
        labels = heldout.labels if heldout is not None else np.zeros((0, m), dtype=np.int8)
        for decoder in decoders:
            decoder = get_decoder(decoder).bind(self.label_names_)
            self.decoder_states_[decoder.spec] = decoder.fit(marginals, labels).state()

    def decoder(self, spec: str | Decoder) -> Decoder:
        """The decoder ``spec`` ready for this model: bound to its labels, its fitted state loaded."""
        decoder = get_decoder(spec).bind(self.label_names_)
        if decoder.needs_fitting:
            state = self.decoder_states_.get(decoder.spec)
            if state is None:
                raise ValueError(
                    f"The {decoder.spec} decoder needs thresholds tuned on held-out data, and this model has none: "
                    f"train it with decoders=['{decoder.spec}'] (CLI: train --decode {decoder.spec})"
                )
            decoder.load_state(state)
        return decoder

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if "head_" not in self.__dict__:
            raise RuntimeError("This model is not trained yet: call fit() or load()")

    @torch.no_grad()
    def distributions(self, dataset_or_inputs, batch_size: int = 256,
                      seed: int | None = None) -> Iterator[JointLabelDistribution]:
        """The model's distribution for consecutive batches of rows, its Monte Carlo draws seeded
        by ``seed`` (default the training seed): a row's answers do not depend on its batch."""
        self._check_fitted()
        inputs = self._inputs_of(dataset_or_inputs)
        n = len(inputs) if isinstance(inputs, list) else inputs.shape[0]
        self.encoder_.eval()
        self.head_.eval()
        device = module_device(self.head_, self.encoder_)
        for start in range(0, n, batch_size):
            chunk = inputs[start : start + batch_size]
            dist = self.head_.distribution(self.encoder_(batch_to(self.encoder_.featurize(chunk), device)))
            yield dist.with_seed(self.train_config_.seed if seed is None else seed)

    def to(self, device: str | torch.device) -> "MultiLabelModel":
        """Move the trained network to ``device`` (``"cpu"``, ``"cuda"``, ``"auto"``:
        :func:`comorbid.devices.resolve_device`) for prediction; batches follow it."""
        self._check_fitted()
        device = resolve_device(device)
        self.encoder_.to(device)
        self.head_.to(device)
        return self

    def _inputs_of(self, dataset_or_inputs):
        """The inputs of a dataset, feature columns reordered to the training order by name."""
        if not isinstance(dataset_or_inputs, MultiLabelDataset):
            return dataset_or_inputs
        dataset = dataset_or_inputs
        if dataset.is_text or self.feature_names_ is None or dataset.feature_names is None:
            return dataset.inputs  # texts, or a model saved without feature names: count check only
        return align_features(dataset.inputs, list(dataset.feature_names), self.feature_names_)

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
        m = len(self.label_names_)
        sets = {name: np.concatenate(p) if p else np.zeros((0, m), np.int8) for name, p in parts.items()}
        if not with_marginals:
            return sets, None
        return sets, np.concatenate(marginals) if marginals else np.zeros((0, m))

    def marginals(self, dataset_or_inputs, batch_size: int = 256, seed: int | None = None) -> np.ndarray:
        """P(y_j = 1 | x) ``[N, M]``."""
        parts = [dist.marginals().cpu().numpy() for dist in self.distributions(dataset_or_inputs, batch_size, seed)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.label_names_)))

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """What ``config.json`` holds: the constructor arguments (:meth:`get_params`, with what fit
        resolved: ``nonempty``'s value, the whole TrainConfig), the encoder's and head's own
        configs (which hold ``encoder``, ``encoder_options`` and ``head_options``: :data:`SAVED_IN_PARTS`),
        and the fitted state."""
        self._check_fitted()
        arguments = {**self.get_params(deep=False), "nonempty": self.head_.nonempty,
                     "train": self.train_config_.to_dict()}
        return {
            "format_version": FORMAT_VERSION,
            "label_names": self.label_names_,
            **{name: value for name, value in arguments.items() if name not in SAVED_IN_PARTS},
            "head": self.head_.config(),
            "encoder": self.encoder_.config(),
            "history": self.history_,
            "temperature": self.head_.temperature,
            "calibration": self.calibration_,
            "decoders": self.decoder_states_,
            "feature_names": self.feature_names_,
            **({"training_fingerprint": self.training_fingerprint_} if self.training_fingerprint_ else {}),
            **({"auto_selection": self.auto_selection_} if getattr(self, "auto_selection_", None) else {}),
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
            tensors = {f"encoder.{k}": v.detach().cpu().contiguous() for k, v in self.encoder_.state_dict().items()}
            tensors.update({f"head.{k}": v.detach().cpu().contiguous() for k, v in self.head_.state_dict().items()})
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
        arguments = {}
        for name, parameter in inspect.signature(cls).parameters.items():
            if name in config and name not in SAVED_IN_PARTS:
                arguments[name] = config[name]
            elif name in READ_BACK:
                arguments[name] = READ_BACK[name](config)
            else:  # a key added after this model was saved
                arguments[name] = parameter.default
        with _rebuilding(config_path, "train"):
            arguments["train"] = TrainConfig(**arguments["train"])
        model = cls(**arguments)
        with _rebuilding(config_path, "encoder"):
            encoder = ENCODERS[encoder_config["name"]].from_config(encoder_config)
        with _rebuilding(config_path, "head"):
            head = HEADS[head_config["name"]](head_config["input_dim"], head_config["n_labels"],
                                              **head_config["options"])
        if head_config["input_dim"] != encoder.output_dim:
            raise ValueError(f"{config_path}: 'head.input_dim' must be the encoder's output_dim "
                             f"{encoder.output_dim}, got {head_config['input_dim']}")
        head.nonempty = bool(arguments["nonempty"])
        head.temperature = float(config.get("temperature", 1.0))
        try:
            tensors = load_file(str(weights_path))
        except (SafetensorError, OSError, ValueError) as error:
            raise ValueError(f"{weights_path}: the weights file is corrupt or truncated ({error})") from None
        expected = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
        expected.update({f"head.{k}": v for k, v in head.state_dict().items()})
        check_tensors(tensors, expected, weights_path)
        try:
            encoder.load_state_dict({k[len("encoder.") :]: v for k, v in tensors.items()
                                     if k.startswith("encoder.")}, strict=True)
            head.load_state_dict({k[len("head.") :]: v for k, v in tensors.items() if k.startswith("head.")},
                                 strict=True)
        except RuntimeError as error:
            raise ValueError(f"{weights_path}: {str(error).strip().splitlines()[-1].strip()}") from None
        encoder.eval()
        head.eval()
        feature_names = config.get("feature_names")
        input_dim = getattr(encoder, "input_dim", None)
        if feature_names is not None and input_dim is not None and len(feature_names) != input_dim:
            raise ValueError(f"{config_path}: 'feature_names' must name the encoder's {input_dim} inputs, "
                             f"got {len(feature_names)} names")
        model.encoder_, model.head_, model.train_config_ = encoder, head, arguments["train"]
        model.label_names_ = list(config["label_names"])
        model.feature_names_ = feature_names
        model.history_ = config.get("history", {})
        model.calibration_ = dict(config.get("calibration", {}))
        model.decoder_states_ = config.get("decoders", {})
        model.training_fingerprint_ = config.get("training_fingerprint")
        model.auto_selection_ = dict(config.get("auto_selection", {}))
        for spec in model.decoder_states_:
            with _rebuilding(config_path, f"decoders.{spec}"):
                model.decoder(spec)
        return model


#: The fitted attributes :meth:`MultiLabelModel.fit` sets (and :meth:`MultiLabelModel.load` reads).
FITTED_ATTRIBUTES = ("encoder_", "head_", "label_names_", "feature_names_", "train_config_", "history_",
                     "calibration_", "decoder_states_", "training_fingerprint_")
#: Constructor arguments that config.json keeps inside the part they configure, not under their name.
SAVED_IN_PARTS = ("encoder", "encoder_options", "head_options")


def _saved_head_options(config: dict) -> dict:
    """``head_options`` of a saved model: its head's options, or a bag's members' options."""
    options = config["head"]["options"]
    if config["head"]["name"] == "bagging" and config.get("model") != "bagging":
        return dict(options.get("base_options") or {})
    return dict(options)


#: How :meth:`MultiLabelModel.load` reads back the constructor arguments that config.json does not
#: hold under their own name: from the part they configure, or, for models saved before the key
#: existed, the value such a model had.
READ_BACK = {
    "encoder": lambda config: config["encoder"]["name"],
    "encoder_options": lambda config: dict(config["encoder"]["options"]),
    "head_options": _saved_head_options,
    "nonempty": lambda config: False,
    "calibrate": lambda config: bool(config.get("calibration")),
}


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
