"""What to train, checked once: :class:`ModelSpec`, the constructor arguments of a model as a value.

``ModelSpec`` holds exactly the parameters of :class:`comorbid.model.MultiLabelModel` (a test
keeps the two lists equal) and checks them when it is made. ``MultiLabelModel.fit`` builds one
from its parameters, the CLI builds one from its flags (``comorbid cv`` and ``comorbid train``
then make their models with :meth:`comorbid.model.MultiLabelModel.from_spec`), and so can any
script::

    >>> from comorbid import ModelSpec
    >>> spec = ModelSpec(model="independent", head_options={"loss": "focal"}, train={"epochs": 20, "seed": 1})
    >>> spec.ensemble
    1
    >>> ModelSpec(ensemble=0)
    Traceback (most recent call last):
    ...
    comorbid.constraints.ParameterError: `ensemble` must be an integer >= 1, got 0

Training settings (``train``) are checked by :class:`comorbid.training.TrainConfig`'s own rules
(:data:`comorbid.training.TRAIN_RULES`).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np

from comorbid.constraints import ParameterError, Rule, at_least, check_all, one_of
from comorbid.encoders import ENCODERS
from comorbid.heads import HEADS
from comorbid.heldout import DEFAULT_FOLDS
from comorbid.training import TrainConfig

#: What each ModelSpec field must be (``model``, ``encoder`` and the options are checked
#: against the registries in :meth:`ModelSpec.__post_init__`).
MODEL_RULES: dict[str, Rule] = {
    "nonempty": one_of(True, False, "auto"),
    "calibrate": one_of(True, False),
    "ensemble": at_least(1, integer=True),
    "heldout_folds": at_least(2, integer=True),
}
TRAIN_FIELDS = tuple(field.name for field in fields(TrainConfig))


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A model's configuration: every constructor argument of
    :class:`comorbid.model.MultiLabelModel`, checked when made.

    Args:
        model: joint label model (head) name, a key of :data:`comorbid.heads.HEADS`.
        encoder: encoder name (:data:`comorbid.encoders.ENCODERS`) or ``"auto"``.
        head_options: keyword arguments of the head; a name the head does not take is an error
            here (e.g. ``loss``, which only the independent model takes).
        encoder_options: keyword arguments of the encoder (checked when it is built).
        train: a :class:`TrainConfig`, or some of its fields to set on top of the encoder's
            recommended settings (:meth:`train_config`), or ``None``.
        heldout_folds: folds of the held-out stage (``>= 2``).
        nonempty: ``True``, ``False`` or ``"auto"``.
        calibrate: fit a temperature on held-out predictions.
        ensemble: bagged heads (``>= 1``); not with ``model="bagging"``, which is a bag already.

    Raises:
        ParameterError: (a ``ValueError``) naming the field, e.g. ``train.epochs``.
    """

    model: str = "chain"
    encoder: str = "auto"
    head_options: Mapping[str, Any] | None = None
    encoder_options: Mapping[str, Any] | None = None
    train: TrainConfig | Mapping[str, Any] | None = None
    heldout_folds: int = DEFAULT_FOLDS
    nonempty: bool | str = "auto"
    calibrate: bool = False
    ensemble: int = 1

    def __post_init__(self):
        if self.model not in HEADS:
            raise ParameterError("model", f"one of {', '.join(sorted(HEADS))}", self.model,
                                 f"Unknown model {self.model!r} for {{name}}; expected one of: {', '.join(sorted(HEADS))}")
        if self.encoder != "auto" and self.encoder not in ENCODERS:
            raise ParameterError("encoder", f"auto or one of {', '.join(sorted(ENCODERS))}", self.encoder,
                                 f"Unknown encoder {self.encoder!r} for {{name}}; expected auto or one of: "
                                 f"{', '.join(sorted(ENCODERS))}")
        check_all(MODEL_RULES, self)
        if self.ensemble > 1 and self.model == "bagging":
            raise ParameterError("ensemble", "1 for the bagging model (a bag already)", self.ensemble)
        for name in ("head_options", "encoder_options"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise ParameterError(name, "a mapping of option names to values, or None", value)
        self._check_head_options()
        self._check_train()

    def _check_head_options(self) -> None:
        """Every head option is a keyword argument of the head (of each member for an ensemble)."""
        takes = head_option_names(self.model)
        if takes is None:
            return
        for key in self.head_options or {}:
            if key not in takes:
                raise ParameterError(
                    f"head_options.{key}", f"an option of the {self.model} model", key,
                    f"Bad option for the {self.model} model: {key!r} ({{name}}); it takes "
                    f"{', '.join(takes) or 'no options'}")

    def _check_train(self) -> None:
        if self.train is None or isinstance(self.train, TrainConfig):
            return
        if not isinstance(self.train, Mapping):
            raise ParameterError("train", "a TrainConfig, a mapping of its fields, or None", self.train)
        unknown = sorted(set(self.train) - set(TRAIN_FIELDS))
        if unknown:
            raise ParameterError("train", f"keys among the TrainConfig fields ({', '.join(TRAIN_FIELDS)})",
                                 unknown[0])
        try:
            TrainConfig(**self.train)  # each value against TRAIN_RULES (the defaults pass)
        except ParameterError as error:
            raise ParameterError(f"train.{error.name}", error.expected, error.value, error.template) from None

    def arguments(self) -> dict[str, Any]:
        """The fields as keyword arguments of :class:`comorbid.model.MultiLabelModel`."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def train_config(self, encoder: str | Any) -> TrainConfig:
        """The TrainConfig: ``train`` itself when it is one, else its fields on top of
        ``encoder``'s recommended settings (an encoder name: its class's ``train_defaults``; a
        fitted encoder: its ``training_defaults()``, e.g. Adam for a bag of words with a hidden
        layer; ``"auto"`` or an unknown name: TrainConfig's own defaults)."""
        if isinstance(self.train, TrainConfig):
            return self.train
        if isinstance(encoder, str):
            defaults = ENCODERS[encoder].train_defaults if encoder in ENCODERS else {}
        else:
            defaults = encoder.training_defaults()
        return TrainConfig(**{**defaults, **(self.train or {})})

    def head(self) -> tuple[str, dict[str, Any]]:
        """The head to build, ``(name, options)``: the model itself, or for ``ensemble > 1`` a bag
        (:class:`comorbid.heads.bagging.BaggedHead`) of ``ensemble`` such heads."""
        options = dict(self.head_options or {})
        if self.ensemble > 1:
            return "bagging", {"base": self.model, "members": self.ensemble, "base_options": options}
        return self.model, options

    def nonempty_for(self, labels: np.ndarray) -> bool:
        """Whether to condition on a non-empty label set, for training labels ``[N, M]``:
        ``"auto"`` is true when every row has a label; ``True`` with an empty row is an error."""
        empty_rows = np.flatnonzero(labels.sum(1) == 0) if labels.shape[1] else np.arange(len(labels))
        if self.nonempty == "auto":
            return len(empty_rows) == 0
        if self.nonempty and len(empty_rows):
            raise ValueError(
                f"nonempty=True, but {len(empty_rows)} training rows have no label (the first is row {empty_rows[0]})"
            )
        return bool(self.nonempty)


def parse_options(pairs: Sequence[str] | None, flag: str = "--head-option") -> dict[str, Any]:
    """``["order=rare-first", "n_components=8"]`` -> ``{"order": "rare-first", "n_components": 8}``:
    options written as the CLI's ``--head-option``/``--encoder-option`` take them (values read as
    JSON when they are JSON, else kept as text; ``flag`` names the option in errors)."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} takes KEY=VALUE, got {pair!r}")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def head_option_names(model: str) -> list[str] | None:
    """The keyword arguments of the head ``model`` beyond ``input_dim`` and ``n_labels`` (``None``
    when it takes any, ``**options``)."""
    parameters = list(inspect.signature(HEADS[model].__init__).parameters.values())[3:]
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return [parameter.name for parameter in parameters]


def models_taking(option: str) -> list[str]:
    """The heads that take the option ``option`` (e.g. ``loss``: the independent model)."""
    return [name for name in HEADS if option in (head_option_names(name) or ())]


__all__ = ["MODEL_RULES", "ModelSpec", "head_option_names", "models_taking", "parse_options"]
