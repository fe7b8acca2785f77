"""Our configurations beside peer methods: same folds, same features, one run.

Usage (from the repository root; ``make bench`` runs it with the defaults)::

    python -m benchmarks.compare                      # every dataset, every method
    python -m benchmarks.compare --datasets emotions --methods 'chain*' br-lr --quick

For every dataset: 5 iteratively stratified folds (seed 0, ``comorbid.data.kfold_indices``);
in each fold every method is trained on the training rows and scored on the test rows, with
the same featurisation (``configs.DatasetSpec``). Our configurations are also trained on an
inner split of the training rows, and for each metric the (configuration, decoder) with the
best inner-validation score is that fold's "selected" row: the test rows never choose anything.
Peers run in a forked child process each, so a native crash loses one row, not the run.

Writes ``benchmarks/results/<dataset>.json`` and, through :mod:`benchmarks.report`, the
markdown table and bar charts beside it.
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy/torch start their pools (recorded in the results).
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import fnmatch
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from benchmarks import configs as bench_configs
from benchmarks.bench_losses import cpu_name
from benchmarks.configs import Configuration, DatasetSpec
from benchmarks.isolation import run_isolated
from benchmarks.peers import PEERS, Peer
from comorbid.data import MultiLabelDataset, kfold_indices, load_dataset, train_validation_split
from comorbid.data.paths import data_root
from comorbid.decoders import get_decoder
from comorbid.encoders import ENCODERS, MLPEncoder
from comorbid.evaluation import REPORTED_METRICS, evaluate_predictions
from comorbid.model import MultiLabelModel

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


# ------------------------------------------------------------------------------ data
def words_as_text(dataset: MultiLabelDataset) -> MultiLabelDataset:
    """Binary word-indicator features -> one text per row of its present words ("w<index>").

    Index tokens rather than the words themselves: some of Enron's words are one character
    ("0", "1"), which a word tokenizer would drop.
    """
    matrix = sp.csr_matrix(dataset.inputs)
    texts = [
        " ".join(f"w{j}" for j, value in zip(matrix.indices[start:end], matrix.data[start:end]) if value != 0)
        for start, end in zip(matrix.indptr[:-1], matrix.indptr[1:])
    ]
    return MultiLabelDataset(dataset.ids, texts, dataset.labels, dataset.label_names, name=dataset.name)


def load(spec: DatasetSpec, root: Path) -> MultiLabelDataset:
    dataset = load_dataset(root / spec.path)
    dataset.name = spec.name
    return words_as_text(dataset) if spec.words_as_text else dataset


def encoder_options(spec: DatasetSpec) -> dict[str, Any]:
    """Options of comorbid's encoder that computes the dataset's shared featurisation."""
    return dict(spec.text_options) if spec.kind == "text" else {"hidden": []}


def featurise(spec: DatasetSpec, train: MultiLabelDataset, test: MultiLabelDataset):
    """The shared feature matrices ``(X_train, X_test)`` for peers, fitted on ``train`` only.

    Exactly what our models see: the same encoder class and options fitted on the same rows
    (text features as a sparse CSR matrix, ``sparse_features``; standardised features as dense
    float32).
    """
    if spec.kind == "text":
        text_encoder = ENCODERS[spec.encoder](**encoder_options(spec)).fit(train.inputs)
        return text_encoder.sparse_features(train.inputs), text_encoder.sparse_features(test.inputs)
    encoder = MLPEncoder(hidden=()).fit(train.inputs)
    return encoder.featurize(train.inputs).numpy(), encoder.featurize(test.inputs).numpy()


# ------------------------------------------------------------------------------ our models
def make_model(config: Configuration, spec: DatasetSpec, seed: int) -> MultiLabelModel:
    options = config.encoder_options
    if options is None:
        options = encoder_options(spec)
    # "auto" is the dataset's shared featurisation (comorbid's own "auto" would pick the
    # clinical encoder for every text); the training settings are the encoder's recommended
    # ones (train_config_for) with the configuration's on top
    encoder = config.encoder if config.encoder != "auto" else spec.encoder
    return MultiLabelModel(model=config.model, encoder=encoder, head_options=dict(config.head_options),
                           encoder_options=dict(options), train={**dict(config.train), "seed": seed},
                           nonempty=config.nonempty)


def fit_model(model: MultiLabelModel, data: MultiLabelDataset, decoders: Sequence[str]) -> MultiLabelModel:
    # Decoders tuned on held-out predictions (macro-/micro-F1 thresholds) are tuned by
    # fit(decoders=...) on out-of-fold predictions of these rows only.
    return model.fit(data, decoders=list(decoders))


def own_features(config: Configuration, spec: DatasetSpec) -> bool:
    """Whether the configuration brings its own featurisation (not the one the peers get)."""
    if config.encoder not in ("auto", spec.encoder):
        return True
    return spec.kind == "text" and config.encoder_options is not None


def row_name(config: Configuration, decoder: str) -> str:
    return f"{config.name} / {decoder}"


def run_configuration(config, spec, train, test, seed) -> dict[str, dict[str, Any]]:
    """Train ``config`` on ``train``; per decoder the test predictions and wall times."""
    start = time.perf_counter()
    model = fit_model(make_model(config, spec, seed), train, config.decoders)
    train_s = time.perf_counter() - start
    rows = {}
    for decoder in config.decoders:
        start = time.perf_counter()
        predictions = model.predict(test, [decoder])[decoder]
        rows[row_name(config, decoder)] = {"predictions": predictions, "train_s": train_s,
                                           "predict_s": time.perf_counter() - start}
    return rows


#: The decoder ``metric`` (``comorbid.decoders``) that targets each reported metric.
DECODER_TARGETS = {"subset_accuracy": "subset", "hamming_loss": "hamming", "instance_f1": "instance-f1",
                   "micro_f1": "micro-f1", "macro_f1": "macro-f1"}


def decoder_target(decoder: str) -> str | None:
    """The decoder's ``metric`` (what it maximises), or ``None`` if it has none."""
    return getattr(get_decoder(decoder), "metric", None)


def select(validation: dict[str, dict[str, float]], metrics: dict[str, bool],
           targets: dict[str, str | None] | None = None) -> dict[str, str]:
    """For each metric, the row with the best inner-validation score.

    Ties go to a row whose decoder targets that metric (``targets``: row -> decoder metric),
    then to the first row in configuration order.
    """
    targets = targets or {}
    order = {row: index for index, row in enumerate(validation)}
    chosen = {}
    for metric, larger_is_better in metrics.items():
        sign = 1.0 if larger_is_better else -1.0
        chosen[metric] = max(validation, key=lambda row: (sign * validation[row][metric],
                                                          targets.get(row) == DECODER_TARGETS.get(metric),
                                                          -order[row]))
    return chosen


# ------------------------------------------------------------------------------ peers
def run_peer(peer: Peer, X_train, Y_train, X_test) -> dict[str, dict[str, Any]]:
    def work():
        start = time.perf_counter()
        method = peer.build().fit(X_train, Y_train)
        train_s = time.perf_counter() - start
        rows = {}
        for predictor in method.predictors:
            start = time.perf_counter()
            predictions = method.predict(X_test, predictor)
            name = f"{peer.name} / {predictor}" if predictor else peer.name
            rows[name] = {"predictions": predictions, "train_s": train_s, "predict_s": time.perf_counter() - start}
        return rows

    return run_isolated(work)


# ------------------------------------------------------------------------------ one dataset
def matches(name: str, patterns: Sequence[str] | None) -> bool:
    return not patterns or any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


def run_dataset(
    dataset: MultiLabelDataset,
    spec: DatasetSpec,
    configurations: Sequence[Configuration],
    peers: Sequence[Peer],
    n_folds: int = bench_configs.N_FOLDS,
    seed: int = bench_configs.SEED,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every configuration and peer on the same folds of ``dataset``; the results document."""
    started = time.perf_counter()
    metrics = bench_configs.METRICS
    configurations = [c for c in configurations if c.runs_on(spec)]
    notes: list[str] = []
    runnable = []
    for peer in peers:
        reason = peer.missing()
        if reason:
            notes.append(f"{peer.name}: not run: {reason}.")
        else:
            runnable.append(peer)
    folds = kfold_indices(dataset.labels, n_folds=n_folds, seed=seed)
    per_fold: dict[str, list[dict[str, Any]]] = {}
    failed: dict[str, str] = {}
    selections: dict[str, list[str]] = {metric: [] for metric in metrics}
    kinds: dict[str, str] = {}

    def record(name: str, kind: str, result: dict[str, Any], truth: np.ndarray, **extra) -> None:
        scores = evaluate_predictions(truth, {name: result["predictions"]})[name]
        kinds[name] = kind
        per_fold.setdefault(name, []).append({"metrics": scores, "train_s": result["train_s"],
                                              "predict_s": result["predict_s"], **extra})

    for fold, (train_rows, test_rows) in enumerate(folds, start=1):
        train, test = dataset.subset(train_rows), dataset.subset(test_rows)
        # --- our configurations: inner validation (selection), then the training fold
        if configurations:
            inner_train_rows, inner_validation_rows = train_validation_split(
                train.labels, bench_configs.INNER_VALIDATION_FRACTION, seed=seed)
            inner_train, inner_validation = train.subset(inner_train_rows), train.subset(inner_validation_rows)
            start = time.perf_counter()
            validation: dict[str, dict[str, float]] = {}
            for config in configurations:
                for name, result in run_configuration(config, spec, inner_train, inner_validation, seed).items():
                    validation[name] = evaluate_predictions(inner_validation.labels, {name: result["predictions"]})[name]
            selection_s = time.perf_counter() - start
            outer: dict[str, dict[str, Any]] = {}
            for config in configurations:
                rows = run_configuration(config, spec, train, test, seed)
                outer.update(rows)
                for name, result in rows.items():
                    record(name, "ours", result, test.labels)
                log(f"  {spec.name} fold {fold}: {config.name} trained in {next(iter(rows.values()))['train_s']:.1f} s")
            targets = {row_name(c, d): decoder_target(d) for c in configurations for d in c.decoders}
            for metric, name in select(validation, metrics, targets).items():
                chosen = outer[name]
                selections[metric].append(name)
                record(selected_name(metric), "ours", {
                    "predictions": chosen["predictions"], "train_s": selection_s + chosen["train_s"],
                    "predict_s": chosen["predict_s"]}, test.labels, selected=name,
                    validation_score=validation[name][metric])
        # --- peers, on the shared featurisation of this fold
        if runnable:
            X_train, X_test = featurise(spec, train, test)
            for peer in runnable:
                if peer.name in failed:
                    continue
                try:
                    rows = run_peer(peer, X_train, train.labels, X_test)
                except RuntimeError as error:
                    failed[peer.name] = f"fold {fold}: {error}"
                    log(f"  {spec.name} fold {fold}: {peer.name} failed: {error}")
                    continue
                for name, result in rows.items():
                    record(name, "peer", result, test.labels)
                log(f"  {spec.name} fold {fold}: {peer.name} trained in {next(iter(rows.values()))['train_s']:.1f} s")
    for peer, error in failed.items():
        notes.append(f"{peer}: failed, so it has no row: {error}")
        for name in [n for n in per_fold if n == peer or n.startswith(peer + " / ")]:
            del per_fold[name]
    return {
        "dataset": spec.name,
        "title": spec.title,
        "folds": n_folds,
        "seed": seed,
        "n_rows": len(dataset),
        "n_labels": dataset.n_labels,
        "features": spec.description,
        "inner_validation_fraction": bench_configs.INNER_VALIDATION_FRACTION,
        "rows": [summarise(name, kinds[name], folds_of_row, configurations, spec)
                 for name, folds_of_row in per_fold.items()],
        "selections": selections,
        "peers": {peer.name: peer.description for peer in peers},
        "notes": notes,
        "environment": environment(),
        "wall_s": time.perf_counter() - started,
    }


def selected_name(metric: str) -> str:
    return f"ours, selected for {bench_configs.METRIC_TITLES[metric]}"


def summarise(name: str, kind: str, folds: list[dict[str, Any]], configurations, spec: DatasetSpec) -> dict[str, Any]:
    """One row of the results: mean and standard deviation (over folds, ddof=0) of each metric."""
    metrics = {
        metric: {"mean": float(np.mean([f["metrics"][metric] for f in folds])),
                 "std": float(np.std([f["metrics"][metric] for f in folds]))}
        for metric in REPORTED_METRICS
    }
    row = {
        "method": name,
        "kind": kind,
        "metrics": metrics,
        "train_s": float(np.mean([f["train_s"] for f in folds])),
        "predict_s": float(np.mean([f["predict_s"] for f in folds])),
        "train_s_per_fold": [round(f["train_s"], 4) for f in folds],
        "predict_s_per_fold": [round(f["predict_s"], 4) for f in folds],
    }
    if folds and "selected" in folds[0]:
        row["selected_for"] = next(m for m in bench_configs.METRICS if selected_name(m) == name)
        row["selected_per_fold"] = [f["selected"] for f in folds]
    elif kind == "ours":
        config = next((c for c in configurations if name.startswith(c.name + " / ")), None)
        row["features"] = "own" if config is not None and own_features(config, spec) else "shared"
    return row


def environment() -> dict[str, Any]:
    import sklearn

    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                "scikit-learn": sklearn.__version__}
    for module, label in (("mlrl.boosting", "mlrl-boomer"), ("skmultilearn", "scikit-multilearn")):
        try:
            from importlib.metadata import version

            versions[label] = version(label)
        except Exception:  # noqa: BLE001 - not installed
            versions[label] = None
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "thread_variables": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
        "boomer_threads": "training 1 thread; prediction mlrl's default pool (see peers.BoomerPeer)",
        "versions": versions,
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# ------------------------------------------------------------------------------ main
def write_results(result: dict[str, Any], out_dir: Path) -> Path:
    from benchmarks import report

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result['dataset']}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    report.write_dataset_report(result, out_dir)
    return path


def keep_rows(result: dict[str, Any], earlier_path: Path) -> dict[str, Any]:
    """``result`` with the rows of the results file ``earlier_path`` that it does not have (same
    dataset, folds and seed: the rows stay comparable), their notes and the environment they ran in.

    The "selected" rows are always this run's (chosen among this run's configurations).
    """
    if not earlier_path.is_file():
        return result
    earlier = json.loads(earlier_path.read_text())
    for key in ("dataset", "folds", "seed", "n_rows"):
        if earlier.get(key) != result.get(key):
            raise ValueError(f"--keep-rows: {earlier_path} has {key}={earlier.get(key)!r}, this run "
                             f"{result.get(key)!r}; the rows would not be comparable")
    produced = {row["method"] for row in result["rows"]}
    kept = [row for row in earlier["rows"] if row["method"] not in produced and "selected_for" not in row
            and not (row["kind"] == "ours" and result["selections"])]
    if not kept:
        return result
    names = ", ".join(sorted({row["method"].split(" / ")[0] for row in kept}))
    merged = dict(result)
    merged["rows"] = result["rows"] + kept
    merged["peers"] = {**earlier.get("peers", {}), **result.get("peers", {})}
    merged["notes"] = result["notes"] + [
        note for note in earlier.get("notes", []) if note not in result["notes"]] + [
        f"Rows kept from the earlier run (`{earlier.get('command', '?')}`, versions "
        f"{earlier['environment']['versions']}) rather than rerun: {names}."]
    merged["kept_environment"] = earlier["environment"]
    return merged


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=None,
                        help=f"dataset names (default all: {', '.join(d.name for d in bench_configs.DATASETS)})")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="shell patterns over configuration and peer names (default all)")
    parser.add_argument("--folds", type=int, default=bench_configs.N_FOLDS)
    parser.add_argument("--seed", type=int, default=bench_configs.SEED)
    parser.add_argument("--quick", action="store_true", help="development run: 2 folds, 300 rows per dataset")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $COMORBID_DATA or ../shared/data")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep-rows", action="store_true",
                        help="keep the rows of the existing <out>/<dataset>.json that this run does not produce "
                             "(e.g. rerun our configurations with --methods and keep the peers' rows)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    root = args.data_root or data_root()
    if root is None:
        print("No data folder: set COMORBID_DATA or put the data in ../shared/data", file=sys.stderr)
        return 2
    specs = [d for d in bench_configs.DATASETS if args.datasets is None or d.name in args.datasets]
    unknown = set(args.datasets or ()) - {d.name for d in bench_configs.DATASETS}
    if unknown:
        print(f"Unknown dataset(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    configurations = [c for c in bench_configs.CONFIGURATIONS if matches(c.name, args.methods)]
    peers = [p for p in PEERS if matches(p.name, args.methods)]
    folds = 2 if args.quick else args.folds
    total = time.perf_counter()
    for spec in specs:
        dataset = load(spec, Path(root))
        if args.quick and len(dataset) > 300:
            dataset = dataset.subset(np.random.default_rng(args.seed).choice(len(dataset), 300, replace=False))
        print(f"{spec.name}: {len(dataset)} rows, {dataset.n_labels} labels, {folds} folds", flush=True)
        result = run_dataset(dataset, spec, configurations, peers, folds, args.seed,
                             log=lambda line: print(line, flush=True))
        result["command"] = "python -m benchmarks.compare " + " ".join(sys.argv[1:] if argv is None else argv)
        if args.keep_rows:
            result = keep_rows(result, args.out / f"{spec.name}.json")
        path = write_results(result, args.out)
        print(f"{spec.name}: {result['wall_s']:.0f} s -> {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}",
              flush=True)
    print(f"comparison: {time.perf_counter() - total:.0f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
