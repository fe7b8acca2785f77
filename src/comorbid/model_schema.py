"""What a model directory must hold, as data: the keys of ``config.json`` and checks on the tensors.

:func:`check_config` runs before anything is rebuilt from ``config.json``;
:func:`check_tensors` compares ``model.safetensors`` with the state dict that the rebuilt encoder
and head expect. Every error is a ``ValueError`` naming the file and the key, e.g.
``m/config.json: 'temperature' must be a finite number > 0, got -1.0``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Callable

import torch


@dataclass(frozen=True)
class Field:
    """A key of a JSON object: its JSON types, whether it must be there, and a check on its value."""

    types: tuple[type, ...]
    required: bool = True
    check: Callable[[Any, dict], bool] | None = None
    #: what ``check`` demands, for the error message
    expects: str = ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str_list(value: Any, _config: dict) -> bool:
    return all(isinstance(item, str) for item in value)


def _unique_str_list(value: Any, config: dict) -> bool:
    return _str_list(value, config) and len(set(value)) == len(value)


def _finite_positive(value: Any, _config: dict) -> bool:
    return not isinstance(value, bool) and math.isfinite(value) and value > 0


def _at_least(low: int) -> Callable[[Any, dict], bool]:
    return lambda value, _config: _is_int(value) and value >= low


def _dict_of_dicts(value: Any, _config: dict) -> bool:
    return all(isinstance(v, dict) for v in value.values())


NUMBER = (int, float)


def _fingerprint(value: dict) -> bool:
    from comorbid.fingerprint import decode

    try:
        decode(value)
    except ValueError:
        return False
    return _is_int(value.get("rows")) and value["rows"] >= 0

#: The keys of config.json (format_version 1).
CONFIG_FIELDS: dict[str, Field] = {
    "format_version": Field((int,), check=lambda v, c: v == 1, expects="1"),
    "label_names": Field((list,), check=_unique_str_list, expects="a list of distinct strings"),
    "model": Field((str,)),
    "nonempty": Field((bool,), required=False),
    "head": Field((dict,)),
    "encoder": Field((dict,)),
    "train": Field((dict,)),
    "history": Field((dict, list), required=False),
    "heldout_folds": Field((int,), required=False, check=_at_least(2), expects=">= 2"),
    "ensemble": Field((int,), required=False, check=_at_least(1), expects=">= 1"),
    "calibrate": Field((bool,), required=False),
    "temperature": Field(NUMBER, required=False, check=_finite_positive, expects="a finite number > 0"),
    "calibration": Field((dict,), required=False),
    "decoders": Field((dict,), required=False, check=_dict_of_dicts, expects="decoder names mapped to objects"),
    "feature_names": Field((list, type(None)), required=False,
                           check=lambda v, c: v is None or _unique_str_list(v, c), expects="distinct strings"),
    # comorbid.selection.AutoModel: what model="auto" tried and chose
    "auto_selection": Field((dict,), required=False),
    # comorbid.fingerprint: written by `comorbid train`, read by report/evaluate
    "training_fingerprint": Field((dict,), required=False, check=lambda v, c: _fingerprint(v),
                                  expects='{"hash": "sha256-64", "rows": N, "hashes": base64 of 8-byte hashes}'),
}

#: The keys of config.json's "head" object.
HEAD_FIELDS: dict[str, Field] = {
    "name": Field((str,)),
    "input_dim": Field((int,), check=_at_least(0), expects=">= 0"),
    "n_labels": Field((int,), check=lambda v, c: v == len(c["label_names"]), expects="the number of label_names"),
    "options": Field((dict,)),
}

#: The keys of config.json's "encoder" object.
ENCODER_FIELDS: dict[str, Field] = {
    "name": Field((str,)),
    "options": Field((dict,)),
    "state": Field((dict,)),
}

#: The keys of a tuned decoder's state (``config.json`` "decoders"), when it has thresholds.
THRESHOLD_FIELDS: dict[str, Field] = {
    "thresholds": Field((list,), check=lambda v, c: len(v) == len(c["label_names"]) and all(
        isinstance(t, NUMBER) and not isinstance(t, bool) and math.isfinite(t) for t in v),
        expects="one finite number per label"),
    "global_threshold": Field(NUMBER, check=lambda v, c: not isinstance(v, bool) and math.isfinite(v),
                              expects="a finite number"),
}


def _train_fields() -> dict[str, Field]:
    """The keys of config.json's "train" object: TrainConfig's fields, typed by their defaults
    (optional: a model written before a field existed gets its default)."""
    from dataclasses import fields

    from comorbid.training import TrainConfig

    kinds = {bool: (bool,), int: (int,), float: NUMBER, str: (str,)}
    table = {}
    for item in fields(TrainConfig):
        kind = kinds[type(item.default)]
        check = (lambda v, c: math.isfinite(v)) if kind == NUMBER else None
        table[item.name] = Field(kind, required=False, check=check, expects="a finite number")
    return table


def _json_type(types: tuple[type, ...]) -> str:
    names = {int: "integer", float: "number", str: "string", bool: "boolean", list: "list", dict: "object",
             type(None): "null"}
    return " or ".join(names[t] for t in types)


def check_fields(obj: dict, fields: dict[str, Field], where: str, prefix: str, config: dict) -> None:
    """Check ``obj`` against ``fields``; ``where`` names the file, ``prefix`` the enclosing key."""
    for key, field in fields.items():
        name = f"{prefix}{key}"
        if key not in obj:
            if field.required:
                raise ValueError(f"{where}: key '{name}' is missing")
            continue
        value = obj[key]
        type_ok = isinstance(value, field.types) and not (isinstance(value, bool) and bool not in field.types)
        if not type_ok:
            raise ValueError(f"{where}: '{name}' must be JSON {_json_type(field.types)}, got {type(value).__name__} "
                             f"{_short(value)}")
        if field.check is not None and not field.check(value, config):
            raise ValueError(f"{where}: '{name}' must be {field.expects}, got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_config(config: Any, where: str | os.PathLike, heads: dict, encoders: dict) -> None:
    """Check a parsed ``config.json`` (keys, JSON types, ranges, known names) before rebuilding from it."""
    where = str(where)
    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(config).__name__}")
    if "format_version" in config and config["format_version"] != 1:
        raise ValueError(f"{where}: expected format_version 1, got {_short(config['format_version'])}")
    check_fields(config, CONFIG_FIELDS, where, "", config)
    check_fields(config["head"], HEAD_FIELDS, where, "head.", config)
    check_fields(config["encoder"], ENCODER_FIELDS, where, "encoder.", config)
    check_fields(config["train"], _train_fields(), where, "train.", config)
    for key, names in (("model", heads), ("head.name", heads), ("encoder.name", encoders)):
        value = config[key] if key == "model" else config[key.split(".")[0]]["name"]
        if value not in names:
            raise ValueError(f"{where}: '{key}' must be one of {', '.join(sorted(names))}, got {_short(value)}")
    for spec, state in config.get("decoders", {}).items():
        if "thresholds" in state or "global_threshold" in state:
            check_fields(state, THRESHOLD_FIELDS, where, f"decoders.{spec}.", config)


# ------------------------------------------------------------------ tensors
def _permutations(tensor: torch.Tensor) -> bool:
    """Each row of an integer tensor is a permutation of 0..n-1."""
    if tensor.dtype.is_floating_point or tensor.dim() not in (1, 2):
        return False
    rows = tensor.reshape(-1, tensor.shape[-1]) if tensor.numel() else tensor.reshape(0, 0)
    expected = torch.arange(tensor.shape[-1], dtype=tensor.dtype)
    return all(torch.equal(row.sort().values, expected) for row in rows)


def _binary(tensor: torch.Tensor) -> bool:
    return bool(((tensor == 0) | (tensor == 1)).all())


def _earlier_positions(tensor: torch.Tensor) -> bool:
    """A sparse chain's parents ``[M, K]`` (or ``[R, M, K]``): row t holds chain positions
    before t, or the padding M."""
    if tensor.dtype.is_floating_point or tensor.dtype == torch.bool or tensor.dim() < 2:
        return False
    m = tensor.shape[-2]
    position = torch.arange(m)[:, None]
    return bool((((tensor >= 0) & (tensor < position)) | (tensor == m)).all())


#: Checks on tensors by the last part of their key (in any head, members of a bagged head too).
TENSOR_CHECKS: dict[str, tuple[Callable[[torch.Tensor], bool], str]] = {
    "order": (_permutations, "a permutation of the labels"),
    "orders": (_permutations, "one permutation of the labels per row"),
    "label_sets": (_binary, "0/1 label sets"),
    "parents": (_earlier_positions, "for each chain position t, earlier positions (< t) or the padding M"),
}


def check_tensors(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                  where: str | os.PathLike) -> None:
    """``tensors`` (read from ``where``) hold exactly the keys of ``expected`` with its shapes, and
    pass :data:`TENSOR_CHECKS`."""
    where = str(where)
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise ValueError(f"{where}: key {missing[0]} is missing{_more(missing)}")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise ValueError(f"{where}: unexpected key {extra[0]}{_more(extra)}")
    for key, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ValueError(f"{where}: key {key} expected shape {list(expected[key].shape)}, got {list(tensor.shape)}")
        if expected[key].dtype.is_floating_point != tensor.dtype.is_floating_point:
            raise ValueError(f"{where}: key {key} expected dtype {expected[key].dtype}, got {tensor.dtype}")
        check = TENSOR_CHECKS.get(key.rsplit(".", 1)[-1])
        if check is not None and not check[0](tensor):
            raise ValueError(f"{where}: key {key} must hold {check[1]}")


def _more(keys: list[str]) -> str:
    return f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
