"""The ``comorbid`` command: cv, train, predict, evaluate, report, demo.

Bad arguments or bad input end with exit code 2 and one line on stderr saying what is wrong.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Any, Optional

import numpy as np
import typer
from rich.console import Console
from safetensors import SafetensorError

from comorbid.data.dataset import MultiLabelDataset
from comorbid.data.labels import align_columns, names_with_unknown
from comorbid.data.readers import SUFFIXES
from comorbid.decoders import decoders_help, get_decoder, parse_decoders
from comorbid.encoders import ENCODERS
from comorbid.evaluation import cross_validate, evaluate_predictions, ranking_scores
from comorbid.heads import HEADS
from comorbid.io import check_writable, spreadsheet_cell, write_atomic
from comorbid.model import MultiLabelModel, check_model_destination
from comorbid.report.tables import metrics_table, ranking_table
from comorbid.training import TrainConfig, new_progress

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
DataArgument = typer.Argument(..., help=f"Data file ({', '.join(SUFFIXES)}) or a registered name.")
LabelsOption = typer.Option(None, "--labels", help="Mulan label XML for an ARFF file.")
ModelOption = typer.Option("chain", "--model", help=f"Joint label model: {', '.join(HEADS)}.")
EncoderOption = typer.Option(
    "auto", "--encoder", help=f"auto (clinical for text, mlp for features), {', '.join(ENCODERS)}.")
LossOption = typer.Option(None, "--loss", help="Training loss of the independent model (see comorbid.losses).")
WeightDecayOption = typer.Option(
    None, "--weight-decay", help="Strength of the weight penalty (default: the encoder's; see TrainConfig).")
PenaltyOption = typer.Option(None, "--penalty", help="l1 or l2 (default: the encoder's: l1 for clinical, l2 otherwise).")
EncoderOptionOption = typer.Option(
    None, "--encoder-option", help="KEY=VALUE option of the encoder, repeatable (min_df=1, char_ngram_range=null).")
HeadOptionOption = typer.Option(
    None, "--head-option", help="KEY=VALUE option of the model, repeatable (order=rare-first, n_components=8).")
BalanceOption = typer.Option(
    None, "--balance", help="Weight training rows against label imbalance: none (default), sqrt, inverse.")
CalibrateOption = typer.Option(
    False, "--calibrate", help="Fit a temperature on out-of-fold predictions (3 extra trainings).")
EnsembleOption = typer.Option(1, "--ensemble", help="Bag this many models on bootstrap samples (1: one model).")
NonemptyOption = typer.Option(
    "auto", "--nonempty", help="Condition on at least one label: auto (when every training row has one), yes, no.")
SeedOption = typer.Option(0, "--seed", help="Seed for folds, splits and initialisation.")
TextColumnOption = typer.Option("text", "--text-column", help="CSV/JSONL: the text column.")
LabelsColumnOption = typer.Option("labels", "--labels-column", help="CSV/JSONL: the ';'-separated labels column.")
LabelSeparatorOption = typer.Option(";", "--label-separator", help="CSV/JSONL: what joins label names in a cell.")
IdColumnOption = typer.Option(None, "--id-column", help="CSV/JSONL: the id column (default: 'id' if present, else the row number).")
DECODE_HELP = f"Comma-separated decoders: {decoders_help()}."


def _check_decoders_for(decoders: list[str], label_names) -> None:
    """Fail before training if a decoder cannot work with these labels (icd-tree on non-ICD
    labels, a cost file missing some of them)."""
    for spec in decoders:
        get_decoder(spec).bind(list(label_names))


def _load(path: str, labels_xml: Optional[str], text_column: str, labels_column: str, id_column: Optional[str],
          separator: str = ";"):
    from comorbid.data import load_dataset

    return load_dataset(path, labels_xml=labels_xml, text_column=text_column, labels_column=labels_column,
                        id_column=id_column, separator=separator)


def _options(pairs: Optional[list[str]], flag: str = "--head-option") -> dict[str, Any]:
    """``["order=rare-first", "n_components=8"]`` -> ``{"order": "rare-first", "n_components": 8}``
    (values read as JSON when they are JSON, else kept as text)."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{flag} takes KEY=VALUE, got {pair!r}")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def _make_model(model: str, encoder: str, loss: Optional[str], weight_decay: Optional[float], seed: int,
                penalty: Optional[str] = None, head_option: Optional[list[str]] = None, nonempty: str = "auto",
                calibrate: bool = False, ensemble: int = 1, balance: Optional[str] = None,
                encoder_option: Optional[list[str]] = None):
    from comorbid.heads import get_head
    from comorbid.training import BALANCES, PENALTIES

    head_options = _options(head_option)
    encoder_options = _options(encoder_option, "--encoder-option")
    if loss is not None:
        if model != "independent":
            raise InputError(f"--loss applies to the independent model only, not to {model!r}")
        head_options["loss"] = loss
    get_head(model)
    train: dict[str, Any] = {"seed": seed}
    if weight_decay is not None:
        if weight_decay < 0:
            raise InputError(f"--weight-decay must be >= 0, got {weight_decay}")
        train["weight_decay"] = weight_decay
    if balance is not None:
        if balance not in BALANCES:
            raise InputError(f"--balance must be one of {', '.join(BALANCES)}, got {balance!r}")
        train["balance"] = balance
    if penalty is not None:
        if penalty not in PENALTIES:
            raise InputError(f"--penalty must be one of {', '.join(PENALTIES)}, got {penalty!r}")
        train["penalty"] = penalty
    choices = {"auto": "auto", "yes": True, "no": False}
    if nonempty not in choices:
        raise InputError(f"--nonempty must be auto, yes or no, got {nonempty!r}")
    if ensemble < 1:
        raise InputError(f"--ensemble must be >= 1, got {ensemble}")
    return lambda: MultiLabelModel(model=model, encoder=encoder, head_options=head_options,
                                   encoder_options=encoder_options, train=train,
                                   nonempty=choices[nonempty], calibrate=calibrate, ensemble=ensemble)


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


def _write_scores(path: str, ids, label_names: list[str], marginals: np.ndarray, top: int) -> None:
    """JSON lines ``{"id": .., "scores": {code: probability}}``: each row's ``top`` codes by
    marginal probability, highest first, rounded to 6 decimals; rows in input order."""
    names = np.asarray(label_names, dtype=object)
    block = max(1, (1 << 22) // max(1, marginals.shape[1]))

    def write(stream):
        for start in range(0, len(marginals), block):
            # float64 before rounding: a rounded float32 prints as 0.9997389912605286
            part = np.clip(marginals[start : start + block].astype(np.float64), 0.0, 1.0)
            best = _top_codes(part, top)
            probabilities = np.round(np.take_along_axis(part, best, axis=1), 6).tolist()
            for row_id, codes, values in zip(ids[start : start + block], names[best].tolist(), probabilities):
                stream.write(json.dumps({"id": row_id, "scores": dict(zip(codes, values))}) + "\n")

    write_atomic(path, write)


# ---------------------------------------------------------------------------- commands
@app.command()
def cv(
    data: str = DataArgument,
    labels: Optional[str] = LabelsOption,
    folds: int = typer.Option(5, "--folds", help="Number of iteratively stratified folds."),
    seed: int = SeedOption,
    model: str = ModelOption,
    encoder: str = EncoderOption,
    decode: str = typer.Option("hamming,subset,instance-f1", "--decode", help=DECODE_HELP),
    loss: Optional[str] = LossOption,
    weight_decay: Optional[float] = WeightDecayOption,
    penalty: Optional[str] = PenaltyOption,
    head_option: Optional[list[str]] = HeadOptionOption,
    nonempty: str = NonemptyOption,
    calibrate: bool = CalibrateOption,
    ensemble: int = EnsembleOption,
    balance: Optional[str] = BalanceOption,
    encoder_option: Optional[list[str]] = EncoderOptionOption,
    json_out: Optional[str] = typer.Option(None, "--json", help="Write the results as JSON here."),
    text_column: str = TextColumnOption,
    labels_column: str = LabelsColumnOption,
    id_column: Optional[str] = IdColumnOption,
    label_separator: str = LabelSeparatorOption,
):
    """Cross-validate one model with several decoders on the same folds."""
    _check_outputs(json_out)
    decoders = parse_decoders(decode)
    make_model = _make_model(model, encoder, loss, weight_decay, seed, penalty, head_option, nonempty,
                             calibrate, ensemble, balance, encoder_option)
    dataset = _load(data, labels, text_column, labels_column, id_column, label_separator)
    if folds < 2 or folds > len(dataset):
        raise InputError(f"--folds must be between 2 and the number of rows ({len(dataset)}), got {folds}")
    _check_decoders_for(decoders, dataset.label_names)
    with new_progress(transient=True) as progress:
        result = cross_validate(dataset, make_model, decoders, folds, seed, progress, description=model)
    payload = {"model": model, "encoder": encoder, "loss": loss, "head_options": _options(head_option),
               "encoder_options": _options(encoder_option, "--encoder-option"),
               "data": data, **result}
    stdout.print(metrics_table(f"{dataset.name}: {model}, {folds}-fold CV (seed {seed}), mean ± std",
                               {f"{model} / {d}": v for d, v in result["metrics"].items()},
                               {f"{model} / {d}": v for d, v in result["std"].items()}))
    stdout.print(ranking_table("codes ranked by marginal probability, mean ± std over folds",
                               result["ranking"]["mean"], result["ranking"]["std"]))
    temperatures = [c["temperature"] for c in result["calibration"] if c]
    console.print(f"test-fold ECE of the marginals: {np.mean(result['ece']):.4f}"
                  + (f"; temperatures {', '.join(f'{t:.2f}' for t in temperatures)}" if temperatures else ""))
    _write_json(json_out, payload)


@app.command()
def train(
    data: str = DataArgument,
    out: str = typer.Option(..., "--out", help="Model directory to write (safetensors + JSON)."),
    labels: Optional[str] = LabelsOption,
    model: str = ModelOption,
    encoder: str = EncoderOption,
    loss: Optional[str] = LossOption,
    weight_decay: Optional[float] = WeightDecayOption,
    penalty: Optional[str] = PenaltyOption,
    head_option: Optional[list[str]] = HeadOptionOption,
    nonempty: str = NonemptyOption,
    calibrate: bool = CalibrateOption,
    ensemble: int = EnsembleOption,
    balance: Optional[str] = BalanceOption,
    encoder_option: Optional[list[str]] = EncoderOptionOption,
    seed: int = SeedOption,
    decode: str = typer.Option(
        "macro-f1,micro-f1", "--decode",
        help="Decoders to prepare: those tuned on held-out data (macro-f1, micro-f1) get thresholds from "
             "out-of-fold predictions (3 extra trainings, shared) saved with the model; 'none' skips that."),
    text_column: str = TextColumnOption,
    labels_column: str = LabelsColumnOption,
    id_column: Optional[str] = IdColumnOption,
    label_separator: str = LabelSeparatorOption,
):
    """Train a model on all of DATA and save it (OUT must be missing, empty or a model directory)."""
    check_writable(out, "dir")
    check_model_destination(out)
    decoders = [] if decode.strip() == "none" else parse_decoders(decode)
    make_model = _make_model(model, encoder, loss, weight_decay, seed, penalty, head_option, nonempty,
                             calibrate, ensemble, balance, encoder_option)
    dataset = _load(data, labels, text_column, labels_column, id_column, label_separator)
    if dataset.n_labels == 0:
        raise InputError(f"{data} has no labels to learn from")
    _check_decoders_for(decoders, dataset.label_names)
    with new_progress(transient=True) as progress:
        trained = make_model().fit(dataset, progress=progress, decoders=decoders)
    trained.save(out)
    if trained.calibration:
        c = trained.calibration
        console.print(f"calibration on {c['rows']} held-out rows: temperature {c['temperature']:.3f}; "
                      f"NLL {c['nll_before']:.4f} -> {c['nll_after']:.4f}; ECE {c['ece_before']:.4f} -> {c['ece_after']:.4f}")
    console.print(f"saved {model} model ({dataset.n_labels} labels, {len(dataset)} rows) to {out}")


def _load_model(model_dir: str) -> MultiLabelModel:
    return MultiLabelModel.load(model_dir)


def _one_decoder_model_and_data(command: str, decode: str, model_dir: str, data: str, *data_options):
    """The one decoder of ``--decode``, the saved model and the data of ``predict``/``report``."""
    decoders = parse_decoders(decode)
    if len(decoders) != 1:
        raise InputError(f"--decode takes one decoder for {command}, got {len(decoders)}")
    return decoders, _load_model(model_dir), _load(data, *data_options)


@app.command()
def predict(
    model_dir: str = typer.Argument(..., help="A directory written by `comorbid train`."),
    data: str = DataArgument,
    out: str = typer.Option(..., "--out", help="CSV to write: header id,labels; labels ';'-joined."),
    decode: str = typer.Option("hamming", "--decode", help="One decoder (see `cv --help`)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of Monte Carlo draws (default: the training seed)."),
    explain: Optional[str] = typer.Option(
        None, "--explain", help="Also write EXPLAIN.jsonl: per row, each suggested code's probability and the "
        "spans of the note that drove it (docs/explain_and_report.md)."),
    explain_method: str = typer.Option("occlusion", "--explain-method", help="occlusion (any model) or attention (caml)."),
    top_words: int = typer.Option(3, "--top-words", help="--explain: words cited per code at most."),
    scores: Optional[str] = typer.Option(
        None, "--scores", help="Also write SCORES.jsonl: per row, {\"id\": .., \"scores\": {code: probability}}, "
        "the --scores-top codes by marginal probability, highest first."),
    scores_top: int = typer.Option(50, "--scores-top", help="--scores: codes per row (all if fewer)."),
    labels: Optional[str] = LabelsOption,
    text_column: str = TextColumnOption,
    labels_column: str = LabelsColumnOption,
    id_column: Optional[str] = IdColumnOption,
    label_separator: str = LabelSeparatorOption,
):
    """Write the predicted label set of every row of DATA, in input order.

    Cells that a spreadsheet would read as a formula (text starting with =, +, -, @, tab or
    carriage return) are written with a leading single quote.
    """
    _check_outputs(out, explain, scores)
    if top_words < 1:
        raise InputError(f"--top-words must be >= 1, got {top_words}")
    if scores_top < 1:
        raise InputError(f"--scores-top must be >= 1, got {scores_top}")
    decoders, trained, dataset = _one_decoder_model_and_data("predict", decode, model_dir, data, labels, text_column,
                                                             labels_column, id_column, label_separator)
    if explain and not dataset.is_text:
        raise InputError("--explain cites spans of texts, but DATA holds a feature matrix")
    if scores:  # one distribution per batch serves the decoder and the scores
        predictions, marginals = trained.predict_with_marginals(dataset, decoders, seed=seed)
        predictions = predictions[decoders[0]]
    else:
        predictions = trained.predict(dataset, decoders, seed=seed)[decoders[0]]

    def write(stream):
        writer = csv.writer(stream)
        writer.writerow(["id", "labels"])
        for row_id, row in zip(dataset.ids, predictions):
            labels = ";".join(name for name, on in zip(trained.label_names, row) if on)
            writer.writerow([spreadsheet_cell(str(row_id)), spreadsheet_cell(labels)])

    write_atomic(out, write)
    console.print(f"wrote {len(dataset)} predictions to {out}")
    if scores:
        _write_scores(scores, dataset.ids, trained.label_names, marginals, scores_top)
        console.print(f"wrote the top {min(scores_top, len(trained.label_names))} codes of {len(dataset)} rows to {scores}")
    if explain:
        from comorbid.explain import explain as explain_notes

        notes = explain_notes(trained, dataset.inputs, dataset.ids, decode=decoders[0], method=explain_method,
                              top_words=top_words)
        write_atomic(explain, lambda stream: stream.writelines(json.dumps(n.to_dict()) + "\n" for n in notes))
        console.print(f"wrote explanations of {len(notes)} rows to {explain}")


@app.command()
def report(
    model_dir: str = typer.Argument(..., help="A directory written by `comorbid train`."),
    data: str = DataArgument,
    out: str = typer.Option(..., "--out", help="HTML file to write (self-contained: figures embedded)."),
    decode: str = typer.Option("hamming", "--decode", help="One decoder."),
    bins: int = typer.Option(10, "--bins", help="Bins of the reliability diagram."),
    labels: Optional[str] = LabelsOption,
    text_column: str = TextColumnOption,
    labels_column: str = LabelsColumnOption,
    id_column: Optional[str] = IdColumnOption,
    label_separator: str = LabelSeparatorOption,
):
    """HTML report of a saved model on labelled DATA: per-code F1, confused codes, calibration."""
    from comorbid.report import model_report

    _check_outputs(out)
    if bins < 1:
        raise InputError(f"--bins must be >= 1, got {bins}")
    decoders, trained, dataset = _one_decoder_model_and_data("report", decode, model_dir, data, labels, text_column,
                                                             labels_column, id_column, label_separator)
    if dataset.n_labels == 0:
        raise InputError(f"{data} has no labels to report against")
    write_atomic(out, model_report(trained, dataset, decoders[0], bins=bins))
    console.print(f"wrote the report to {out}")


@app.command("evaluate")
def evaluate_command(
    model_dir: str = typer.Argument(..., help="A directory written by `comorbid train`."),
    data: str = DataArgument,
    decode: str = typer.Option("hamming,subset,instance-f1", "--decode", help=DECODE_HELP),
    json_out: Optional[str] = typer.Option(None, "--json", help="Write the metrics as JSON here."),
    labels: Optional[str] = LabelsOption,
    text_column: str = TextColumnOption,
    labels_column: str = LabelsColumnOption,
    id_column: Optional[str] = IdColumnOption,
    label_separator: str = LabelSeparatorOption,
):
    """Score a saved model on labelled DATA (labels the model does not know count as missed)."""
    _check_outputs(json_out)
    decoders = parse_decoders(decode)
    trained = _load_model(model_dir)
    dataset = _load(data, labels, text_column, labels_column, id_column, label_separator)
    if dataset.n_labels == 0:
        raise InputError(f"{data} has no labels to evaluate against")
    names, unknown = names_with_unknown(trained.label_names, dataset.label_names)
    aligned = dataset.with_label_names(names)
    predictions, marginals = trained.predict_with_marginals(aligned, decoders)
    padded = {d: align_columns(p, trained.label_names, names) for d, p in predictions.items()}
    scores = evaluate_predictions(aligned.labels, padded)
    known = len(trained.label_names)  # unknown gold codes are never ranked: misses
    ranked = ranking_scores(aligned.labels[:, :known], marginals, aligned.labels[:, known:])
    stdout.print(metrics_table(f"{model_dir} on {data}", scores))
    stdout.print(ranking_table("codes ranked by marginal probability", ranked))
    if unknown:
        console.print(f"note: {len(unknown)} label(s) in the data are unknown to the model: {', '.join(unknown[:10])}")
    _write_json(json_out, {"model_dir": model_dir, "data": data, "metrics": scores, "ranking": ranked,
                           "unknown_labels": unknown})


@app.command()
def demo(
    data: Optional[str] = typer.Option(None, "--data", help="CMC 2007 XML file, or the data folder holding cmc2007/."),
    folds: int = typer.Option(5, "--folds", help="Number of folds."),
    seed: int = SeedOption,
    quick: bool = typer.Option(False, "--quick", help="A fast smoke run: 2 folds."),
):
    """Independent vs chain model on CMC 2007 (or a built-in synthetic set), every decoder."""
    from comorbid.demo import run_demo

    run_demo(data, 2 if quick else folds, seed, stdout, console)


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
        _error_line(error.format_message())
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
