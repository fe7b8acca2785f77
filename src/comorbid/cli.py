"""The ``comorbid`` command: cv, train, predict, evaluate, report, demo, serve.

Bad arguments or bad input end with exit code 2 and one line on stderr saying what is wrong.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.metadata
import inspect
import json
import re
import sys
import typing
from dataclasses import dataclass
from typing import Any, Iterator, Literal, Optional

try:
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import numpy as np
import typer
from rich.console import Console
from safetensors import SafetensorError

from comorbid import distributed
from comorbid.data.dataset import MultiLabelDataset
from comorbid.data.labels import align_columns, names_with_unknown, read_code_list
from comorbid.data.readers import STREAM_FORMATS, SUFFIXES
from comorbid.decoders import decoders_help, get_decoder, parse_decoders
from comorbid.encoders import ENCODERS
from comorbid.evaluation import cross_validate, evaluate_predictions, ranking_scores
from comorbid.fingerprint import fingerprint, training_overlap_warning
from comorbid.heads import HEADS
from comorbid.io import check_writable, kill_point, spreadsheet_cell, write_atomic
from comorbid.model import MultiLabelModel, check_model_destination
from comorbid.selection import TEXT_MODEL, AutoModel
from comorbid.selection import describe as describe_selection
from comorbid.report.tables import metrics_table, ranking_table
from comorbid.constraints import ParameterError
from comorbid.spec import TRAIN_FIELDS, ModelSpec, models_taking, parse_options
from comorbid.training import BALANCES, PENALTIES, new_progress

from typer import Abort, Exit

try:  # typer >= 0.20 ships its own copy of click; older typers use click itself
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Multi-label classification with dependent labels, for ICD coding.")
console = Console(stderr=True)
# Tables are wide: when stdout is a file or pipe, don't squeeze them into 80 columns.
stdout = Console(width=None if sys.stdout.isatty() else 160)


class InputError(Exception):
    """Bad input or arguments: reported in one line, exit code 2."""


# ---------------------------------------------------------------------------- shared options
# Help panels: every option of a command sits in one of these (typer's rich_help_panel).
DATA, MODEL, TRAINING, DECODING, OUTPUT = "Data", "Model", "Training", "Decoding", "Output"
# Choices shown and checked by the parser (typer reads Literal types as click choices); the
# registries are read once, at import.
HeadName = Literal[tuple(HEADS)]
ModelName = Literal[(*HEADS, "auto")]
EncoderName = Literal[("auto", *ENCODERS)]
PenaltyName = Literal[PENALTIES]
BalanceName = Literal[BALANCES]
NonemptyChoice = Literal["auto", "yes", "no"]
ExplainMethod = Literal["auto", "linear", "occlusion", "attention"]
StreamFormat = Literal[tuple(STREAM_FORMATS)]

DataArgument = typer.Argument(
    ..., metavar="DATA",
    help=f"Data file ({', '.join(SUFFIXES)}), a registered name, or - (standard input).")
ModelDirArgument = typer.Argument(..., metavar="MODEL_DIR", help="A directory written by `comorbid train`.")
LabelsOption = typer.Option(None, "--labels", metavar="FILE", rich_help_panel=DATA,
                            help="Mulan label XML for an ARFF file.")
ModelOption = typer.Option(
    "auto", "--model", metavar="NAME", rich_help_panel=MODEL,
    help=f"Joint label model: auto (chain for text; for features, chosen on 20% of the training rows: "
         f"docs/encoders.md), {', '.join(HEADS)}.")
EncoderOption = typer.Option(
    "auto", "--encoder", metavar="NAME", rich_help_panel=MODEL,
    help=f"auto (clinical for text, mlp for features), {', '.join(ENCODERS)}.")
LossOption = typer.Option(None, "--loss", metavar="NAME", rich_help_panel=MODEL,
                          help="Training loss of the independent model (see comorbid.losses).")
WeightDecayOption = typer.Option(
    None, "--weight-decay", metavar="FLOAT", rich_help_panel=TRAINING,
    help="Strength of the weight penalty (default: the encoder's; see TrainConfig).")
PenaltyOption = typer.Option(None, "--penalty", rich_help_panel=TRAINING,
                             help="l1 or l2 (default: the encoder's: l1 for clinical, l2 otherwise).")
EpochsOption = typer.Option(None, "--epochs", metavar="N", rich_help_panel=TRAINING,
                            help="Adam: passes over the training rows at most (default: the encoder's).")
LearningRateOption = typer.Option(None, "--learning-rate", metavar="FLOAT", rich_help_panel=TRAINING,
                                  help="Adam: step size (default: the encoder's).")
BatchSizeOption = typer.Option(None, "--batch-size", metavar="N", rich_help_panel=TRAINING,
                               help="Adam: rows per step (default: the encoder's).")
EncoderOptionOption = typer.Option(
    None, "--encoder-option", metavar="KEY=VALUE", rich_help_panel=MODEL,
    help="Option of the encoder, repeatable (min_df=1, char_ngram_range=null).")
HeadOptionOption = typer.Option(
    None, "--head-option", metavar="KEY=VALUE", rich_help_panel=MODEL,
    help="Option of the model, repeatable (order=rare-first, n_components=8).")
BalanceOption = typer.Option(
    None, "--balance", rich_help_panel=TRAINING,
    help="Weight training rows against label imbalance: none (default), sqrt, inverse.")
CalibrateOption = typer.Option(
    False, "--calibrate/--no-calibrate", metavar="", rich_help_panel=TRAINING,
    help="Fit a temperature on out-of-fold predictions (3 extra trainings).")
EnsembleOption = typer.Option(1, "--ensemble", metavar="K", rich_help_panel=MODEL,
                              help="Bag this many models on bootstrap samples (1: one model).")
NonemptyOption = typer.Option(
    "auto", "--nonempty", rich_help_panel=MODEL,
    help="Condition on at least one label: auto (when every training row has one), yes, no.")
SeedOption = typer.Option(0, "--seed", metavar="N", rich_help_panel=TRAINING,
                          help="Seed for folds, splits and initialisation.")
TextColumnOption = typer.Option("text", "--text-column", metavar="NAME", rich_help_panel=DATA,
                                help="CSV/JSONL: the text column.")
LabelsColumnOption = typer.Option("labels", "--labels-column", metavar="NAME", rich_help_panel=DATA,
                                  help="CSV/JSONL: the ';'-separated labels column.")
LabelSeparatorOption = typer.Option(";", "--label-separator", metavar="TEXT", rich_help_panel=DATA,
                                    help="CSV/JSONL: what joins label names in a cell.")
DeviceOption = typer.Option(
    "cpu", "--device", metavar="cpu|cuda|auto", rich_help_panel=TRAINING,
    help="Torch device of the network: cpu (default), cuda (cuda:N), auto (cuda when torch sees a GPU).")
IdColumnOption = typer.Option(None, "--id-column", metavar="NAME", rich_help_panel=DATA,
                              help="CSV/JSONL: the id column (default: 'id' if present, else the row number).")


def _read_config(ctx: typer.Context, path: Optional[str]) -> Optional[str]:
    """``--config FILE.toml``: its keys become the defaults of the command's options (click's
    ``default_map``), so a flag given on the command line wins over the file.

    Keys are the option names with ``_`` or ``-`` (``learning_rate``, ``head-option``); an
    unknown key, or a file that is not TOML, is an error naming the file (exit code 2).
    """
    if not path or ctx.resilient_parsing:
        return path
    try:
        with open(path, "rb") as stream:
            table = tomllib.load(stream)
    except FileNotFoundError:
        raise InputError(f"{path}: no such config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a valid TOML file ({error})") from None
    known = {param.name for param in ctx.command.params if param.name != "config"}
    values = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in known:
            raise InputError(f"{path}: unknown key {key!r} for `comorbid {ctx.info_name}` "
                             f"(known: {', '.join(sorted(known))})")
        values[name] = value
    ctx.default_map = {**(ctx.default_map or {}), **values}
    return path


ConfigOption = typer.Option(
    None, "--config", metavar="FILE.toml", is_eager=True, callback=_read_config, rich_help_panel=TRAINING,
    help="Option values from a TOML file (keys: the option names, e.g. model = \"independent\", epochs = 20, "
         "learning_rate = 0.001, head_option = [\"order=rare-first\"]); flags on the command line win.")
DECODE_HELP = f"Comma-separated decoders: {decoders_help()}."
DECODE_METAVAR = "DECODERS"


def _print_version(value: bool) -> None:
    if value:
        try:
            version = importlib.metadata.version("comorbid")
        except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
            version = "unknown (not installed)"
        print(f"comorbid {version}")
        raise Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", metavar="", is_eager=True, callback=_print_version,
                                       help="Print the version of comorbid and exit.")):
    """Multi-label classification with dependent labels, for ICD coding."""


def _check_decoders_for(decoders: list[str], label_names) -> None:
    """Fail before training if a decoder cannot work with these labels (icd-tree on non-ICD
    labels, a cost file missing some of them)."""
    for spec in decoders:
        get_decoder(spec).bind(list(label_names))


def _load(path: str, labels_xml: Optional[str], text_column: str, labels_column: str, id_column: Optional[str],
          separator: str = ";", require_labels: bool = True, data_format: Optional[str] = None):
    """The data set at ``path``; ``-`` reads standard input (``data_format``, or sniffed)."""
    from comorbid.data import load_dataset
    from comorbid.data.readers import load_stream

    options = dict(labels_xml=labels_xml, text_column=text_column, labels_column=labels_column, id_column=id_column,
                   separator=separator, require_labels=require_labels)
    if path == "-":
        return load_stream(sys.stdin.buffer, data_format, **options)
    if data_format is not None:
        raise InputError("--format applies to standard input (DATA '-') only; files are read by their ending")
    return load_dataset(path, **options)


# ---------------------------------------------------------------------------- option groups
# `cv` and `train` take the same options for what to train and how to read the data: each group
# is a dataclass of typer options, written once; a command asks for a group by a parameter
# annotated with its class (`training: ModelFlags`) and receives one object
# (:func:`_with_option_groups`). Adding a training option is one field of ModelFlags.
NONEMPTY_CHOICES = {"auto": "auto", "yes": True, "no": False}


@dataclass
class ModelFlags:
    """What to train: the options that make the :class:`comorbid.spec.ModelSpec` (:meth:`spec`).

    A field named like a :class:`TrainConfig` field (``epochs``, ``penalty``, ...) sets it when
    given (``None``: the encoder's default)."""

    model: ModelName = ModelOption
    encoder: EncoderName = EncoderOption
    loss: Optional[str] = LossOption
    weight_decay: Optional[float] = WeightDecayOption
    penalty: Optional[PenaltyName] = PenaltyOption
    epochs: Optional[int] = EpochsOption
    learning_rate: Optional[float] = LearningRateOption
    batch_size: Optional[int] = BatchSizeOption
    head_option: Optional[list[str]] = HeadOptionOption
    nonempty: NonemptyChoice = NonemptyOption
    calibrate: bool = CalibrateOption
    ensemble: int = EnsembleOption
    balance: Optional[BalanceName] = BalanceOption
    encoder_option: Optional[list[str]] = EncoderOptionOption
    seed: int = SeedOption

    def head_options(self) -> dict[str, Any]:
        return {**parse_options(self.head_option), **({"loss": self.loss} if self.loss is not None else {})}

    def encoder_options(self) -> dict[str, Any]:
        return parse_options(self.encoder_option, "--encoder-option")

    def spec(self) -> ModelSpec:
        """The spec of these flags; a rule it breaks is reported naming the flag (exit code 2)."""
        train = {name: getattr(self, name) for name in TRAIN_FIELDS if getattr(self, name, None) is not None}
        try:
            # model "auto": texts get the chain model, as before "auto" existed; feature matrices
            # get the choice of comorbid.selection.AutoModel (the spec's model a placeholder)
            model = TEXT_MODEL if self.model == "auto" else self.model
            return ModelSpec(model=model, encoder=self.encoder, head_options=self.head_options(),
                             encoder_options=self.encoder_options(), train=train,
                             nonempty=NONEMPTY_CHOICES[self.nonempty], calibrate=self.calibrate,
                             ensemble=self.ensemble)
        except ParameterError as error:
            if error.name == "head_options.loss" and self.loss is not None:
                raise InputError(f"--loss applies to the {' or '.join(models_taking('loss'))} model only, "
                                 f"not to {self.model!r}") from None
            raise InputError(error.describe(_flag(error.name))) from None

    def model_factory(self, spec: ModelSpec):
        """What trains: ``MultiLabelModel`` for a named model, ``AutoModel`` (whose ``fit`` returns
        the chosen, trained ``MultiLabelModel``) for ``--model auto``."""
        if self.model == "auto":
            return lambda: AutoModel(spec)
        return lambda: MultiLabelModel.from_spec(spec)


def _flag(name: str) -> str:
    """The CLI flag of a ModelSpec field (``train.epochs`` -> ``--epochs``, ``head_options.order``
    -> ``--head-option order``)."""
    group, _, key = name.rpartition(".")
    if group in ("head_options", "encoder_options"):
        return f"--{group[:-1].replace('_', '-')} {key}"
    return f"--{key.replace('_', '-')}"


@dataclass
class ReadFlags:
    """How to read DATA (CSV/JSONL columns, the Mulan label file of an ARFF file)."""

    labels: Optional[str] = LabelsOption
    text_column: str = TextColumnOption
    labels_column: str = LabelsColumnOption
    id_column: Optional[str] = IdColumnOption
    label_separator: str = LabelSeparatorOption

    def load(self, path: str, **options) -> MultiLabelDataset:
        return _load(path, self.labels, self.text_column, self.labels_column, self.id_column,
                     self.label_separator, **options)


OPTION_GROUPS = (ModelFlags, ReadFlags)


def _with_option_groups(command):
    """``command`` with each parameter annotated by an option group (:data:`OPTION_GROUPS`)
    replaced, in place, by the group's options; it is called with the group built from them."""
    hints = typing.get_type_hints(command)
    groups = {name: hints[name] for name in inspect.signature(command).parameters if hints.get(name) in OPTION_GROUPS}
    parameters = []
    for name, parameter in inspect.signature(command).parameters.items():
        if name not in groups:
            parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=parameter.default,
                                                annotation=hints.get(name, parameter.annotation)))
            continue
        group_hints = typing.get_type_hints(groups[name])
        parameters.extend(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default,
                                            annotation=group_hints[field.name])
                          for field in dataclasses.fields(groups[name]))

    def run(**values):
        for name, group in groups.items():
            values[name] = group(**{field.name: values.pop(field.name) for field in dataclasses.fields(group)})
        return command(**values)

    run.__name__, run.__doc__, run.__module__ = command.__name__, command.__doc__, command.__module__
    run.__signature__ = inspect.Signature(parameters)
    run.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return run


def _check_outputs(*files: Optional[str]) -> None:
    """Fail in a second, before any work, if an output file cannot be written (comorbid.io)."""
    for path in files:
        if path:
            check_writable(path, "file")


def _write_json(path: Optional[str], payload: dict) -> None:
    if path:
        write_atomic(path, lambda stream: json.dump(payload, stream, indent=1))


def _top_codes(marginals: np.ndarray, top: int) -> np.ndarray:
    """``[B, min(top, M)]`` column indices of each row's best marginals, highest first.

    ``np.argpartition`` picks the ``top`` columns in ``O(M)`` per row, then only those are
    sorted; equal marginals are ordered lower column first (which of several columns tied at
    the cut gets in is left to ``argpartition``).
    """
    n = min(top, marginals.shape[1])
    if n < marginals.shape[1]:
        chosen = np.argpartition(-marginals, n - 1, axis=1)[:, :n]
    else:
        chosen = np.broadcast_to(np.arange(n), marginals.shape)
    values = np.take_along_axis(marginals, chosen, axis=1)
    return np.take_along_axis(chosen, np.lexsort((chosen, -values), axis=1), axis=1)


def _score_lines(ids, names: np.ndarray, marginals: np.ndarray, top: int) -> Iterator[str]:
    """JSON lines ``{"id": .., "scores": {code: probability}}`` of one batch: each row's ``top``
    codes by marginal probability, highest first, rounded to 6 decimals; rows in input order."""
    block = max(1, (1 << 22) // max(1, marginals.shape[1]))
    for start in range(0, len(marginals), block):
        # float64 before rounding: a rounded float32 prints as 0.9997389912605286
        part = np.clip(marginals[start : start + block].astype(np.float64), 0.0, 1.0)
        best = _top_codes(part, top)
        probabilities = np.round(np.take_along_axis(part, best, axis=1), 6).tolist()
        for row_id, codes, values in zip(ids[start : start + block], names[best].tolist(), probabilities):
            yield json.dumps({"id": row_id, "scores": dict(zip(codes, values))}) + "\n"


def _predicted_batches(trained: MultiLabelModel, dataset: MultiLabelDataset, spec: str, seed: Optional[int],
                       with_marginals: bool, batch_size: int = 256):
    """``(ids, label sets [B, M] int8, marginals [B, M] or None)`` for consecutive batches of
    rows, in input order, as the model produces them (the same answers as ``model.predict``:
    a row's answer does not depend on its batch)."""
    start = 0
    for sets, marginals in trained.predict_batches(dataset, [spec], with_marginals, batch_size, seed):
        batch = sets[spec]
        yield dataset.ids[start : start + len(batch)], batch, marginals
        start += len(batch)


# ---------------------------------------------------------------------------- commands
@app.command()
@_with_option_groups
def cv(
    data: str = DataArgument,
    reading: ReadFlags = None,
    folds: int = typer.Option(5, "--folds", metavar="K", rich_help_panel=TRAINING,
                              help="Number of iteratively stratified folds."),
    training: ModelFlags = None,
    decode: str = typer.Option("hamming,subset,instance-f1", "--decode", metavar=DECODE_METAVAR,
                               rich_help_panel=DECODING, help=DECODE_HELP),
    json_out: Optional[str] = typer.Option(None, "--json", metavar="FILE", rich_help_panel=OUTPUT,
                                           help="Write the results as JSON here."),
    report_dir: Optional[str] = typer.Option(
        None, "--report", metavar="DIR", rich_help_panel=OUTPUT,
        help="Also write an HTML report per decoder (and index.html) from the out-of-fold predictions."),
    config: Optional[str] = ConfigOption,
):
    """Cross-validate one model with several decoders on the same folds."""
    _check_outputs(json_out)
    if report_dir:
        from comorbid.report import check_report_destination

        check_writable(report_dir, "dir")
        check_report_destination(report_dir)
    decoders = parse_decoders(decode)
    spec = training.spec()
    model, seed = training.model, training.seed
    dataset = reading.load(data)
    if model == "auto" and dataset.is_text:  # texts: the chain model, nothing chosen
        model = TEXT_MODEL
    if folds < 2 or folds > len(dataset):
        raise InputError(f"--folds must be between 2 and the number of rows ({len(dataset)}), got {folds}")
    _check_decoders_for(decoders, dataset.label_names)
    with new_progress(transient=True) as progress:
        result = cross_validate(dataset, training.model_factory(spec), decoders, folds, seed, progress,
                                description=model, keep_out_of_fold=bool(report_dir))
    if report_dir:
        from comorbid.report import write_cv_reports

        out_of_fold = result.pop("out_of_fold")
        result["out_of_fold_metrics"] = out_of_fold.metrics()
        write_cv_reports(report_dir, out_of_fold, f"{dataset.name}: {model} / {training.encoder}", folds, seed)
        console.print(f"wrote the out-of-fold reports of {len(decoders)} decoder(s) to {report_dir}")
    payload = {"model": model, "encoder": training.encoder, "loss": training.loss,
               "head_options": parse_options(training.head_option),
               "encoder_options": training.encoder_options(), "data": data, **result}
    stdout.print(metrics_table(f"{dataset.name}: {model}, {folds}-fold CV (seed {seed}), mean ± std",
                               {f"{model} / {d}": v for d, v in result["metrics"].items()},
                               {f"{model} / {d}": v for d, v in result["std"].items()}))
    stdout.print(ranking_table("codes ranked by marginal probability, mean ± std over folds",
                               result["ranking"]["mean"], result["ranking"]["std"]))
    for decoder, rare in result["rare"].items():  # codes with <= 2 notes in the training fold
        console.print(f"{decoder}: rare codes micro-F1 {rare['rare_micro_f1']:.3f}, MAP {rare['rare_map']:.3f}; "
                      f"never-seen codes recall {rare['unseen_recall']:.3f}, in the top 15 {rare['unseen_recall@15']:.3f}")
    temperatures = [c["temperature"] for c in result["calibration"] if c]
    console.print(f"test-fold ECE of the marginals: {np.mean(result['ece']):.4f}"
                  + (f"; temperatures {', '.join(f'{t:.2f}' for t in temperatures)}" if temperatures else ""))
    _write_json(json_out, payload)


@app.command()
@_with_option_groups
def train(
    data: str = DataArgument,
    out: str = typer.Option(..., "--out", metavar="DIR", rich_help_panel=OUTPUT,
                            help="Model directory to write (safetensors + JSON)."),
    reading: ReadFlags = None,
    training: ModelFlags = None,
    device: str = DeviceOption,
    decode: str = typer.Option(
        "macro-f1,micro-f1", "--decode", metavar=DECODE_METAVAR, rich_help_panel=DECODING,
        help="Decoders to prepare: those tuned on held-out data (macro-f1, micro-f1) get thresholds from "
             "out-of-fold predictions (3 extra trainings, shared) saved with the model; 'none' skips that."),
    config: Optional[str] = ConfigOption,
    distributed_training: bool = typer.Option(
        False, "--distributed", rich_help_panel=TRAINING,
        help="Train with DistributedDataParallel across the processes torchrun started (automatic under "
             "torchrun; with this flag, not being under torchrun is an error). docs/distributed.md"),
    codes: Optional[str] = typer.Option(
        None, "--codes", metavar="FILE", rich_help_panel=TRAINING,
        help="Candidate codes, one a line: added to the label space even without a training note, so "
             "that the code descriptions can suggest them (docs/training.md)."),
    ctx: typer.Context = None,
):
    """Train a model on all of DATA and save it (OUT must be missing, empty or a model directory)."""
    check_writable(out, "dir")
    check_model_destination(out)
    if distributed_training and not distributed.launched():
        raise InputError("--distributed: start the ranks with torchrun, e.g. "
                         "`torchrun --nproc-per-node 2 -m comorbid train DATA --out DIR` (docs/distributed.md)")
    if distributed.launched():  # joined until the command ends; every rank trains, rank 0 writes
        ctx.with_resource(distributed.process_group())
    decoders = [] if decode.strip() == "none" else parse_decoders(decode)
    spec = training.spec()
    if device != "cpu":
        from comorbid.devices import resolve_device

        resolve_device(device)  # a missing GPU fails before any work
        spec = dataclasses.replace(spec, train={**(spec.train or {}), "device": device})
    candidates = None if codes is None else read_code_list(codes)  # a bad list fails before reading DATA
    dataset = reading.load(data)
    if dataset.n_labels == 0:
        raise InputError(f"{data} has no labels to learn from")
    if candidates is not None:  # codes without a training note: suggested through their descriptions
        seen = set(dataset.label_names)
        dataset = dataset.with_label_names(list(dataset.label_names) + [c for c in candidates if c not in seen])
        console.print(f"{codes}: {dataset.n_labels - len(seen)} codes without a training note added as candidates")
    _check_decoders_for(decoders, dataset.label_names)
    with new_progress(transient=True) as progress:
        trained = training.model_factory(spec)().fit(dataset, progress=progress if distributed.is_main() else None,
                                                     decoders=decoders)
    kill_point(f"rank-{distributed.rank()}-trained")
    distributed.barrier()  # rank 0 writes only once every rank has finished training
    if not distributed.is_main():
        return
    trained.training_fingerprint_ = fingerprint(dataset.inputs)  # report/evaluate warn on these rows
    if candidates is not None and not getattr(trained.encoder_, "description_columns", 0):
        console.print(f"[yellow]warning:[/] --codes: this model matches no code descriptions, so the codes of "
                      f"{codes} without a training note will not be suggested (--head-option descriptions=true "
                      "turns them on where they apply)")
    trained.save(out)
    if "candidates" in trained.auto_selection_:  # --model auto on features (saved in config.json)
        console.print(describe_selection(trained.auto_selection_))
    if trained.calibration_:
        c = trained.calibration_
        console.print(f"calibration on {c['rows']} held-out rows: temperature {c['temperature']:.3f}; "
                      f"NLL {c['nll_before']:.4f} -> {c['nll_after']:.4f}; ECE {c['ece_before']:.4f} -> {c['ece_after']:.4f}")
    console.print(f"saved {trained.get_params()['model']} model ({dataset.n_labels} labels, {len(dataset)} rows) to {out}")


def _load_model(model_dir: str) -> MultiLabelModel:
    return MultiLabelModel.load(model_dir)


def _warn_if_training_rows(trained: MultiLabelModel, dataset: MultiLabelDataset, data: str) -> None:
    """Say loudly, on stderr, when the rows being scored include the model's training rows."""
    warning = training_overlap_warning(trained.training_fingerprint_, dataset.inputs, data)
    if warning:
        console.print(f"[bold red]WARNING:[/] {warning}", highlight=False, markup=True)


def _one_decoder_model_and_data(command: str, decode: str, model_dir: str, data: str, reading: ReadFlags,
                                **load_options):
    """The one decoder of ``--decode``, the saved model and the data of ``predict``/``report``."""
    decoders = parse_decoders(decode)
    if len(decoders) != 1:
        raise InputError(f"--decode takes one decoder for {command}, got {len(decoders)}")
    return decoders, _load_model(model_dir), reading.load(data, **load_options)


@app.command()
@_with_option_groups
def predict(
    model_dir: str = ModelDirArgument,
    data: str = DataArgument,
    out: str = typer.Option(..., "--out", metavar="FILE.csv", rich_help_panel=OUTPUT,
                            help="CSV to write: header id,labels; labels ';'-joined."),
    decode: str = typer.Option("hamming", "--decode", metavar="DECODER", rich_help_panel=DECODING,
                               help="One decoder (see `cv --help`)."),
    seed: Optional[int] = typer.Option(None, "--seed", metavar="N", rich_help_panel=DECODING,
                                       help="Seed of Monte Carlo draws (default: the training seed)."),
    explain: Optional[str] = typer.Option(
        None, "--explain", metavar="FILE.jsonl", rich_help_panel=OUTPUT, help="Also write EXPLAIN.jsonl: per row, each suggested code's probability and the "
        "spans of the note that drove it (docs/explain_and_report.md)."),
    explain_method: ExplainMethod = typer.Option(
        "auto", "--explain-method", rich_help_panel=OUTPUT,
        help="auto (linear where it applies, else occlusion), linear (bag of words under linear code logits: "
             "log-odds shares), occlusion (any model; one pass per word) or attention (caml)."),
    top_words: int = typer.Option(3, "--top-words", metavar="N", rich_help_panel=OUTPUT,
                                  help="--explain: words cited per code at most."),
    scores: Optional[str] = typer.Option(
        None, "--scores", metavar="FILE.jsonl", rich_help_panel=OUTPUT, help="Also write SCORES.jsonl: per row, {\"id\": .., \"scores\": {code: probability}}, "
        "the --scores-top codes by marginal probability, highest first."),
    scores_top: int = typer.Option(50, "--scores-top", metavar="N", rich_help_panel=OUTPUT,
                                   help="--scores: codes per row (all if fewer)."),
    device: str = DeviceOption,
    data_format: Optional[StreamFormat] = typer.Option(
        None, "--format", rich_help_panel=DATA, help="DATA '-' (standard input): csv, tsv, jsonl or xml (default: sniffed from the "
        "first non-blank character: '<' xml, '{' or '[' jsonl, else csv)."),
    reading: ReadFlags = None,
):
    """Write the predicted label set of every row of DATA, in input order, as they are predicted.

    DATA needs no labels column (new notes); '-' reads standard input. Cells that a spreadsheet would read as a formula (text starting with =, +, -, @, tab or
    carriage return) are written with a leading single quote.
    """
    _check_outputs(out, explain, scores)
    if top_words < 1:
        raise InputError(f"--top-words must be >= 1, got {top_words}")
    if scores_top < 1:
        raise InputError(f"--scores-top must be >= 1, got {scores_top}")
    decoders, trained, dataset = _one_decoder_model_and_data("predict", decode, model_dir, data, reading,
                                                             require_labels=False, data_format=data_format)
    trained.to(device)  # saved models load on the CPU
    if explain and not dataset.is_text:
        raise InputError("--explain cites spans of texts, but DATA holds a feature matrix")
    if explain:
        from comorbid.explain import explain_batch, resolve_method

        explain_method = resolve_method(trained, explain_method)
    names = np.asarray(trained.label_names_, dtype=object)
    # one distribution per batch serves the decoder, the scores and the explanations; rows are
    # written as they come, into the temporary files that write_atomic renames at the end
    batches = _predicted_batches(trained, dataset, decoders[0], seed, with_marginals=bool(scores or explain))

    def write(prediction_stream, score_stream=None, explain_stream=None):
        writer = csv.writer(prediction_stream, lineterminator="\n")
        writer.writerow(["id", "labels"])
        done = 0
        with new_progress(transient=True) as progress:
            task = progress.add_task("predicting" + (" and explaining" if explain else ""), total=len(dataset),
                                     status="")
            for ids, sets, marginals in batches:
                for row_id, row in zip(ids, sets):
                    labels = ";".join(names[row.astype(bool)].tolist())
                    writer.writerow([spreadsheet_cell(str(row_id)), spreadsheet_cell(labels)])
                if score_stream is not None:
                    score_stream.writelines(_score_lines(ids, names, marginals, scores_top))
                if explain_stream is not None:
                    notes = explain_batch(trained, dataset.inputs[done : done + len(ids)], ids, sets, marginals,
                                          explain_method, top_words)
                    explain_stream.writelines(json.dumps(n.to_dict()) + "\n" for n in notes)
                done += len(ids)
                progress.advance(task, len(ids))

    outputs = [path for path in (out, scores, explain) if path]
    streams: dict[str, Any] = {}

    def nested(index: int = 0):  # each output written atomically, all in one pass
        if index == len(outputs):
            write(*(streams.get(path) for path in (out, scores, explain)))
            return
        write_atomic(outputs[index], lambda stream: (streams.__setitem__(outputs[index], stream), nested(index + 1)))

    nested()
    console.print(f"wrote {len(dataset)} predictions to {out}")
    if scores:
        console.print(f"wrote the top {min(scores_top, len(trained.label_names_))} codes of {len(dataset)} rows to {scores}")
    if explain:
        console.print(f"wrote explanations of {len(dataset)} rows to {explain} ({explain_method})")


@app.command()
@_with_option_groups
def report(
    model_dir: str = ModelDirArgument,
    data: str = DataArgument,
    out: str = typer.Option(..., "--out", metavar="FILE.html", rich_help_panel=OUTPUT,
                            help="HTML file to write (self-contained: figures embedded)."),
    decode: str = typer.Option("hamming", "--decode", metavar="DECODER", rich_help_panel=DECODING,
                               help="One decoder."),
    bins: int = typer.Option(10, "--bins", metavar="N", rich_help_panel=OUTPUT,
                             help="Bins of the reliability diagram."),
    reading: ReadFlags = None,
):
    """HTML report of a saved model on labelled DATA: per-code F1, confused codes, calibration."""
    from comorbid.report import model_report

    _check_outputs(out)
    if bins < 1:
        raise InputError(f"--bins must be >= 1, got {bins}")
    decoders, trained, dataset = _one_decoder_model_and_data("report", decode, model_dir, data, reading)
    if dataset.n_labels == 0:
        raise InputError(f"{data} has no labels to report against")
    _warn_if_training_rows(trained, dataset, data)  # the report carries the same warning as a banner
    write_atomic(out, model_report(trained, dataset, decoders[0], bins=bins))
    console.print(f"wrote the report to {out}")


@app.command("evaluate")
@_with_option_groups
def evaluate_command(
    model_dir: str = ModelDirArgument,
    data: str = DataArgument,
    decode: str = typer.Option("hamming,subset,instance-f1", "--decode", metavar=DECODE_METAVAR,
                               rich_help_panel=DECODING, help=DECODE_HELP),
    json_out: Optional[str] = typer.Option(None, "--json", metavar="FILE", rich_help_panel=OUTPUT,
                                           help="Write the metrics as JSON here."),
    reading: ReadFlags = None,
):
    """Score a saved model on labelled DATA (labels the model does not know count as missed)."""
    _check_outputs(json_out)
    decoders = parse_decoders(decode)
    trained = _load_model(model_dir)
    dataset = reading.load(data)
    if dataset.n_labels == 0:
        raise InputError(f"{data} has no labels to evaluate against")
    _warn_if_training_rows(trained, dataset, data)
    names, unknown = names_with_unknown(trained.label_names_, dataset.label_names)
    aligned = dataset.with_label_names(names)
    predictions, marginals = trained.predict_with_marginals(aligned, decoders)
    padded = {d: align_columns(p, trained.label_names_, names) for d, p in predictions.items()}
    scores = evaluate_predictions(aligned.labels, padded, names)
    known = len(trained.label_names_)  # unknown gold codes are never ranked: misses
    ranked = ranking_scores(aligned.labels[:, :known], marginals, aligned.labels[:, known:])
    stdout.print(metrics_table(f"{model_dir} on {data}", scores))
    stdout.print(ranking_table("codes ranked by marginal probability", ranked))
    if unknown:
        console.print(f"note: {len(unknown)} label(s) in the data are unknown to the model: {', '.join(unknown[:10])}")
    _write_json(json_out, {"model_dir": model_dir, "data": data, "metrics": scores, "ranking": ranked,
                           "unknown_labels": unknown})


@app.command("inspect")
@_with_option_groups
def inspect_command(
    data: str = DataArgument,
    model_dir: Optional[str] = typer.Option(
        None, "--model", metavar="DIR", rich_help_panel=MODEL,
        help="Use this saved model's configuration as the joint model (refitted on the inner split; "
             "default: the default chain)."),
    html: Optional[str] = typer.Option(None, "--html", metavar="FILE.html", rich_help_panel=OUTPUT,
                                       help="Also write the report as one HTML page with plots."),
    json_out: Optional[str] = typer.Option(None, "--json", metavar="FILE", rich_help_panel=OUTPUT,
                                           help="Write the numbers as JSON here."),
    samples: int = typer.Option(200, "--samples", metavar="N", rich_help_panel=DECODING,
                                help="Label sets drawn per held-out row for the expected metrics."),
    seed: int = SeedOption,
    reading: ReadFlags = None,
):
    """Does modelling label dependence pay on DATA, and for which metric? Label statistics, held-out
    log-likelihood of the chain vs independent (inner 80/20 split), predicted gain of joint decoding per
    metric, and a recommendation (docs/inspect.md)."""
    from comorbid.inspection import factories_like, inspect_dataset, model_factories
    from comorbid.report.inspection import inspection_html, inspection_tables

    _check_outputs(html, json_out)
    if samples < 1:
        raise InputError(f"--samples must be >= 1, got {samples}")
    dataset = reading.load(data)
    if dataset.n_labels == 0:
        raise InputError(f"{data} has no labels to inspect")
    if len(dataset) < 10:
        raise InputError(f"{data} has {len(dataset)} rows; inspect needs at least 10 (an inner 80/20 split)")
    if model_dir is not None:
        factories = factories_like(_load_model(model_dir))
    else:  # every row coded (clinical coding): condition both models on a non-empty set
        factories = model_factories(train={"seed": seed}, nonempty=bool((dataset.labels.sum(1) > 0).all()))
    with new_progress(transient=True) as progress:
        result = inspect_dataset(dataset, *factories, samples=samples, seed=seed, progress=progress)
    for table in inspection_tables(result):
        stdout.print(table)
    if html:
        write_atomic(html, inspection_html(result, dataset.labels, list(dataset.label_names)))
        console.print(f"wrote the report to {html}")
    _write_json(json_out, result.to_dict())


@app.command()
def demo(
    data: Optional[str] = typer.Option(None, "--data", metavar="PATH", rich_help_panel=DATA,
                                       help="CMC 2007 XML file, or the data folder holding cmc2007/."),
    folds: Optional[int] = typer.Option(
        None, "--folds", metavar="K", rich_help_panel=TRAINING,
        help="Cross-validate the comparison with K folds (default: one fixed split, 1/5 of the reports held out)."),
    seed: int = SeedOption,
    quick: bool = typer.Option(False, "--quick", metavar="", rich_help_panel=TRAINING,
                               help="A fast smoke run: 2 folds."),
):
    """The default coder on 3 unseen notes (codes, probabilities, evidence), then independent vs chain
    on held-out reports with every decoder; CMC 2007, or a built-in synthetic set."""
    from comorbid.demo import run_demo

    if folds is not None and folds < 2:
        raise InputError(f"--folds must be >= 2, got {folds}")
    run_demo(data, 2 if quick else folds, seed, stdout, console)


@app.command()
def serve(
    model_dir: str = typer.Argument(..., help="A directory written by `comorbid train`."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    workers: int = typer.Option(1, "--workers", help="Worker processes, each with its own copy of the model."),
    threads: int = typer.Option(1, "--threads", help="Torch threads per worker (1 suits small batches)."),
    max_batch_notes: int = typer.Option(64, "--max-batch-notes", help="Notes coded in one forward pass at most."),
    max_wait_ms: float = typer.Option(5.0, "--max-wait-ms", help="How long a batch waits for more requests."),
):
    """Serve MODEL_DIR over HTTP: POST /v1/code, GET /v1/model, GET /healthz, /docs (docs/serve.md)."""
    try:
        from comorbid.serve import ServeLimits, serve as run_server
    except ImportError as error:
        raise InputError(f"serve needs the serve extra (pip install 'comorbid[serve]'): {error}") from None
    run_server(model_dir, host, port, workers, ServeLimits(max_batch_notes=max_batch_notes, max_wait_ms=max_wait_ms),
               threads)


def _error_line(message: str) -> None:
    """One line on stderr, never wrapped (rich would wrap it at the terminal width)."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"comorbid: error: {first}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app and turns every input error into one line and exit code 2."""
    try:
        app(args=argv, prog_name="comorbid", standalone_mode=False)
    except Exit as done:
        return done.exit_code
    except ClickException as error:
        message = error.format_message()
        if re.search(r"unexpected extra argument.*\((yes|no|true|false|on|off|0|1)\)", message, re.IGNORECASE):
            message += "; a flag takes no value: write --calibrate or --no-calibrate (likewise --quick)"
        _error_line(message)
        return 2
    except Abort:
        _error_line("aborted")
        return 130
    except (InputError, ValueError, FileNotFoundError, RuntimeError) as error:
        _error_line(str(error) or type(error).__name__)
        return 2
    except SafetensorError as error:  # load() names the file; this is the fallback for other readers
        _error_line(f"a weights file is corrupt or truncated: {error}")
        return 2
    except OSError as error:  # PermissionError, IsADirectoryError, ENOSPC on /dev/full, ...
        _error_line(f"{error.filename}: {error.strerror}" if error.filename and error.strerror else str(error))
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
