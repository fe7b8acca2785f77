"""How our fixed settings were chosen: candidates scored on ONE inner split of fold 1's training rows.

The comparison (``benchmarks.compare``) must not choose anything on test folds. The settings
written into ``configs.CONFIGURATIONS`` (regularisation, hidden units, which heads and decoders
are worth their time) were fixed by this script, which never reads a test fold: it takes the
training rows of fold 1 (5 iteratively stratified folds, seed 0, as in the comparison), splits
them 80/20 with the same ``train_validation_split`` the comparison's selection uses, trains each
candidate on the 80 % and scores it on the 20 %. Peers can be scored on the same split, to see
where the gaps are before the real run.

The candidates are ``configs.CONFIGURATIONS`` (what the comparison runs) plus ``CANDIDATES``
below (what was tried and dropped, kept as the record); each runs on the datasets its
``inputs`` names. Peers run only when a ``--methods`` pattern names them. Run from the
repository root, in the benchmark environment (the peers need ``.venv-bench``), one thread:

    OMP_NUM_THREADS=1 .venv-bench/bin/python -m benchmarks.inner_split --datasets cmc2007 cmc2007-tfidf
    OMP_NUM_THREADS=1 .venv-bench/bin/python -m benchmarks.inner_split --datasets scene --methods 'powerset*' boomer

Prints each candidate's validation scores as it goes, then one table per dataset (validation
scores and train seconds), and writes ``benchmarks/results/inner_split/<dataset>.json`` and
``<dataset>.md`` (``--out DIR`` elsewhere, ``--out -`` nowhere). Rows of an earlier run that are
not rerun are kept, so the table of a dataset can be filled in several runs; a rerun row
replaces the old one. The recorded runs (two rounds, every candidate of the time and the peers)
took about 25 minutes on the shared 2-core machine, CMC with clinical features 7 of them.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

from benchmarks import compare
from benchmarks import configs as bench_configs
from benchmarks.configs import (
    ALL_THREE, LINEAR, MARGINAL_DECODERS, METRIC_TITLES, METRICS, MLP, MLP_TRAIN, TFIDF_TRAIN, THRESHOLDS,
    Configuration,
)
from benchmarks.peers import PEERS
from comorbid.data import kfold_indices, train_validation_split
from comorbid.data.paths import data_root
from comorbid.evaluation import evaluate_predictions

#: Where the tables go (one ``<dataset>.json`` and ``<dataset>.md`` each).
RESULTS = compare.RESULTS / "inner_split"

#: Candidates tried besides the configurations of the comparison (kept to record what was tried).
CANDIDATES: list[Configuration] = [
    # clinical features (cmc2007)
    Configuration("chain thresholds", "chain", ALL_THREE + THRESHOLDS, "clinical"),
    Configuration("independent thresholds", "independent", ALL_THREE + THRESHOLDS, "clinical"),
    Configuration("powerset", "powerset", ALL_THREE, "clinical"),
    Configuration("ising", "ising", ALL_THREE, "clinical"),
    Configuration("mixture", "mixture", ALL_THREE, "clinical"),
    Configuration("chain-ensemble", "chain-ensemble", ALL_THREE, "clinical"),
    Configuration("chain l2 wd=1e-5", "chain", ALL_THREE, "clinical", train={"penalty": "l2", "weight_decay": 1e-5}),
    Configuration("chain l1 wd=3e-5", "chain", ALL_THREE, "clinical", train={"weight_decay": 3e-5}),
    Configuration("chain l1 wd=3e-4", "chain", ALL_THREE, "clinical", train={"weight_decay": 3e-4}),
    Configuration("chain no-nonempty", "chain", ALL_THREE, "clinical", nonempty=False),
    # TF-IDF (cmc2007-tfidf, enron): the new heads, other regularisation, L1, thresholds
    Configuration("independent wd=1e-6", "independent", ALL_THREE, "enron", train=TFIDF_TRAIN),
    Configuration("chain wd=1e-6", "chain", ALL_THREE, "enron", train=TFIDF_TRAIN),
    Configuration("independent wd=1e-5", "independent", ALL_THREE, "tfidf", train={"weight_decay": 1e-5}),
    Configuration("chain wd=1e-5", "chain", ALL_THREE, "tfidf", train={"weight_decay": 1e-5}),
    Configuration("independent wd=1e-4", "independent", ALL_THREE, "cmc2007-tfidf", train={"weight_decay": 1e-4}),
    Configuration("chain wd=1e-4", "chain", ALL_THREE, "cmc2007-tfidf", train={"weight_decay": 1e-4}),
    Configuration("chain wd=3e-4", "chain", ALL_THREE, "tfidf", train={"weight_decay": 3e-4}),
    Configuration("independent+zlpr wd=1e-5", "independent", MARGINAL_DECODERS, "tfidf",
                  head_options={"loss": "zlpr"}, train={"weight_decay": 1e-5}),
    Configuration("independent+zlpr wd=1e-5 thresholds", "independent", THRESHOLDS, "tfidf",
                  head_options={"loss": "zlpr"}, train={"weight_decay": 1e-5}),
    Configuration("independent wd=1e-6 thresholds", "independent", THRESHOLDS, "tfidf", train=TFIDF_TRAIN),
    Configuration("powerset wd=1e-6", "powerset", ALL_THREE, "tfidf", train=TFIDF_TRAIN),
    Configuration("powerset wd=1e-5", "powerset", ALL_THREE, "tfidf", train={"weight_decay": 1e-5}),
    Configuration("powerset wd=3e-5", "powerset", ALL_THREE, "tfidf", train={"weight_decay": 3e-5}),
    Configuration("powerset wd=1e-4", "powerset", ALL_THREE, "tfidf", train={"weight_decay": 1e-4}),
    Configuration("mixture wd=1e-6", "mixture", ALL_THREE, "tfidf", train=TFIDF_TRAIN),
    Configuration("mixture wd=1e-5", "mixture", ALL_THREE, "tfidf", train={"weight_decay": 1e-5}),
    Configuration("ising wd=1e-6", "ising", ALL_THREE, "tfidf", train=TFIDF_TRAIN),
    Configuration("chain l1 wd=1e-5", "chain", ALL_THREE, "tfidf", train={"penalty": "l1", "weight_decay": 1e-5}),
    Configuration("independent l1 wd=1e-5", "independent", ALL_THREE, "tfidf",
                  train={"penalty": "l1", "weight_decay": 1e-5}),
    # feature matrices (emotions, scene)
    Configuration("independent mlp512", "independent", ALL_THREE, "features", encoder_options=MLP, train=MLP_TRAIN),
    Configuration("chain mlp512", "chain", ALL_THREE, "scene", encoder_options=MLP, train=MLP_TRAIN),
    Configuration("independent mlp512 thresholds", "independent", THRESHOLDS, "features", encoder_options=MLP,
                  train=MLP_TRAIN),
    Configuration("independent+lsep linear", "independent", MARGINAL_DECODERS, "features",
                  head_options={"loss": "lsep"}, encoder_options=LINEAR, train={"weight_decay": 1e-2}),
    Configuration("powerset mlp512 wd=1e-3", "powerset", ALL_THREE, "features", encoder_options=MLP,
                  train={**MLP_TRAIN, "weight_decay": 1e-3}),
    Configuration("powerset mlp1024", "powerset", ALL_THREE, "features",
                  encoder_options={"hidden": [1024], "dropout": 0.5}, train=MLP_TRAIN),
    Configuration("powerset mlp512x2", "powerset", ALL_THREE, "features",
                  encoder_options={"hidden": [512, 512], "dropout": 0.5}, train=MLP_TRAIN),
    Configuration("ising mlp512", "ising", ALL_THREE, "features", encoder_options=MLP, train=MLP_TRAIN),
    Configuration("chain-ensemble mlp512", "chain-ensemble", ALL_THREE, "features", encoder_options=MLP,
                  train=MLP_TRAIN),
    Configuration("mixture linear", "mixture", ALL_THREE, "features", encoder_options=LINEAR,
                  train={"weight_decay": 1e-2}),
    Configuration("mixture linear wd=1e-3", "mixture", ALL_THREE, "features", encoder_options=LINEAR,
                  train={"weight_decay": 1e-3}),
    Configuration("mixture mlp512 wd=1e-3", "mixture", ALL_THREE, "features", encoder_options=MLP,
                  train={**MLP_TRAIN, "weight_decay": 1e-3}),
    Configuration("mixture mlp1024", "mixture", ALL_THREE, "features",
                  encoder_options={"hidden": [1024], "dropout": 0.5}, train=MLP_TRAIN),
    Configuration("mixture mlp256 dropout=0.2", "mixture", ALL_THREE, "features",
                  encoder_options={"hidden": [256], "dropout": 0.2}, train=MLP_TRAIN),
    Configuration("mixture mlp512 K=8", "mixture", ALL_THREE, "features", head_options={"n_components": 8},
                  encoder_options=MLP, train=MLP_TRAIN),
    Configuration("mixture mlp512 lr=3e-4", "mixture", ALL_THREE, "features", encoder_options=MLP,
                  train={**MLP_TRAIN, "learning_rate": 3e-4}),
    # non-linear feature encoders (issue 16): tree-leaf embeddings and random Fourier features
    Configuration("independent trees", "independent", ALL_THREE, "features", encoder="trees",
                  train={"weight_decay": 1e-3}),
    Configuration("powerset trees", "powerset", ALL_THREE, "features", encoder="trees", train={"weight_decay": 1e-3}),
    Configuration("powerset trees wd=1e-2", "powerset", ALL_THREE, "emotions", encoder="trees",
                  train={"weight_decay": 1e-2}),
    Configuration("powerset random-trees", "powerset", ALL_THREE, "scene", encoder="trees",
                  encoder_options={"supervised": False}, train={"weight_decay": 1e-3}),
    Configuration("independent rff", "independent", ALL_THREE, "features", encoder="rff",
                  encoder_options={"n_components": 2000}, train={"weight_decay": 1e-3}),
    Configuration("powerset rff", "powerset", ALL_THREE, "scene", encoder="rff",
                  encoder_options={"n_components": 2000}, train={"weight_decay": 1e-3}),
    Configuration("mixture rff+mlp512", "mixture", ALL_THREE, "scene", encoder="rff",
                  encoder_options={"n_components": 2000, **MLP}, train=MLP_TRAIN),
    Configuration("mixture trees+mlp512", "mixture", ALL_THREE, "features", encoder="trees",
                  encoder_options={"hidden": [512], "dropout": 0.5}, train=MLP_TRAIN),
]


def inner_split(dataset, seed: int = bench_configs.SEED):
    """(inner training rows, inner validation rows) of fold 1's training rows: the comparison's
    own selection split of its first fold."""
    train_rows, _ = kfold_indices(dataset.labels, n_folds=bench_configs.N_FOLDS, seed=seed)[0]
    train = dataset.subset(train_rows)
    inner_train, inner_validation = train_validation_split(train.labels, bench_configs.INNER_VALIDATION_FRACTION,
                                                           seed=seed)
    return train.subset(inner_train), train.subset(inner_validation)


def _score(rows: dict, kind: str, name: str, results: dict, labels, log) -> None:
    """Score one configuration's or peer's predictions on the validation rows into ``rows``."""
    for row, result in results.items():
        rows[row] = {"kind": kind, "train_s": result["train_s"], "predict_s": result["predict_s"],
                     **evaluate_predictions(labels, {row: result["predictions"]})[row]}
    log(f"  {name}: {next(iter(results.values()))['train_s']:.1f} s")
    for row in results:
        log("    " + _line(row, rows[row]))


def run(spec, dataset, configurations, peers, log=print) -> dict:
    train, validation = inner_split(dataset)
    rows = {}
    for config in configurations:
        if not config.runs_on(spec):
            continue
        try:
            results = compare.run_configuration(config, spec, train, validation, bench_configs.SEED)
        except Exception as error:  # noqa: BLE001 - a candidate that fails is reported, not fatal
            log(f"  {config.name}: failed: {type(error).__name__}: {error}")
            continue
        _score(rows, "ours", config.name, results, validation.labels, log)
    if peers:
        X_train, X_validation = compare.featurise(spec, train, validation)
        for peer in peers:
            if peer.missing():
                continue
            try:
                results = compare.run_peer(peer, X_train, train.labels, X_validation)
            except RuntimeError as error:
                log(f"  {peer.name}: failed: {error}")
                continue
            _score(rows, "peer", peer.name, results, validation.labels, log)
    return {"dataset": spec.name, "inner_train_rows": len(train), "inner_validation_rows": len(validation),
            "rows": rows}


def _line(name: str, row: dict) -> str:
    cells = " | ".join(f"{row[m]:.3f}" for m in METRICS)
    return f"| {name} | {row['kind']} | {cells} | {row['train_s']:.1f} |"


def markdown(result: dict) -> str:
    header = " | ".join(f"{METRIC_TITLES[m]} {'↑' if up else '↓'}" for m, up in METRICS.items())
    lines = [f"# {result['dataset']}: one inner split of fold 1's training rows",
             "", f"Trained on {result['inner_train_rows']} rows, scored on {result['inner_validation_rows']} "
             "(no test fold involved). Made by `python -m benchmarks.inner_split`.", "",
             f"| row | kind | {header} | train s |", "|---|---|" + "---:|" * len(METRICS) + "---:|"]
    lines += [_line(name, row) for name, row in result["rows"].items()]
    return "\n".join(lines) + "\n"


def merged(previous: dict | None, result: dict) -> dict:
    """``result`` with the rows of an earlier run of the same split that it does not rerun."""
    if previous is None or previous.get("inner_train_rows") != result["inner_train_rows"]:
        return result
    rows = {name: row for name, row in previous["rows"].items() if name not in result["rows"]}
    return {**result, "rows": {**rows, **result["rows"]}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", required=True,
                        help=f"dataset names ({', '.join(d.name for d in bench_configs.DATASETS)})")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="shell patterns over configuration, candidate and peer names (default: every "
                             "configuration and candidate, no peer)")
    parser.add_argument("--out", default=str(RESULTS), help=f"results folder (default {RESULTS}; '-': none)")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $COMORBID_DATA or ../shared/data")
    args = parser.parse_args(argv)
    unknown = set(args.datasets) - {d.name for d in bench_configs.DATASETS}
    if unknown:
        print(f"Unknown dataset(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    root = args.data_root or data_root()
    if root is None:
        print("No data folder: set COMORBID_DATA or put the data in ../shared/data", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    configurations = [c for c in bench_configs.CONFIGURATIONS + CANDIDATES if compare.matches(c.name, args.methods)]
    peers = [p for p in PEERS if args.methods and compare.matches(p.name, args.methods)]
    out = None if args.out == "-" else Path(args.out)
    for spec in [d for d in bench_configs.DATASETS if d.name in args.datasets]:
        dataset = compare.load(spec, Path(root))
        start = time.perf_counter()
        print(f"{spec.name}:", flush=True)
        result = run(spec, dataset, configurations, peers, log=lambda line: print(line, flush=True))
        print(markdown(result), flush=True)
        print(f"{spec.name}: {time.perf_counter() - start:.0f} s", flush=True)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{spec.name}.json"
            result = merged(json.loads(path.read_text()) if path.exists() else None, result)
            path.write_text(json.dumps(result, indent=1) + "\n")
            (out / f"{spec.name}.md").write_text(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
