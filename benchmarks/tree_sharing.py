"""Training with label similarity (issue 15): the independent head with ``tree_sharing`` against bce.

Three steps, each a sub-command (run from the repository root, one at a time, under ``nice``):

    # 1. choose: candidates on ONE inner split of fold 1's training rows (no test fold read)
    python -m benchmarks.tree_sharing inner CMC.xml --out /tmp/inner_cmc.json
    python -m benchmarks.tree_sharing inner codiesp/train.jsonl --out /tmp/inner_codiesp.json
    # 2. measure: CodiEsp trained on train.jsonl, scored on dev.jsonl (bootstrap std over dev notes)
    python -m benchmarks.tree_sharing dev --out /tmp/dev_codiesp.json
    # 3. the table: `comorbid cv --json` files (5 folds, same folds) and the dev file
    python -m benchmarks.tree_sharing table --cv bce=/tmp/cmc_bce.json tree=/tmp/cmc_tree.json \
        --dev /tmp/dev_codiesp.json --inner /tmp/inner_cmc.json /tmp/inner_codiesp.json

Step 3 writes ``benchmarks/results/tree_sharing.json`` and ``.md``. Metrics: micro-F1, the
ICD-tree cost of the errors and hierarchical F1 (:data:`comorbid.evaluation.COST_METRICS`), and
the rare-code scores (:func:`comorbid.evaluation.rare_code_scores`: codes with at most 2
training notes). CodiEsp (CLEF eHealth 2020, Miranda-Escalada et al.; CC BY 4.0).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import json
import time
from pathlib import Path

import numpy as np

from comorbid.data import kfold_indices, load_dataset, train_validation_split
from comorbid.data.labels import align_columns, names_with_unknown
from comorbid.data.paths import data_root
from comorbid.evaluation import evaluate_predictions, rare_code_scores
from comorbid.heads.base import label_counts
from comorbid.io import write_atomic
from comorbid.model import MultiLabelModel

RESULTS = Path(__file__).parent / "results"
#: name -> (model, head options): what step 1 compares (bce is the independent head's likelihood)
CANDIDATES = {
    "bce": ("independent", {}),
    "tree_sharing": ("independent", {"tree_sharing": True}),
    "hierarchical": ("independent", {"loss": "hierarchical"}),
}
DECODER = "hamming"
SHOWN = ("micro_f1", "tree_cost", "hierarchical_f1", "rare_micro_f1", "rare_map")


def _n_parameters(model) -> int:
    return sum(p.numel() for p in [*model.encoder_.parameters(), *model.head_.parameters()])


def _fit(name: str, train):
    """Candidate ``name`` fitted on ``train``, and the seconds the fit took."""
    model_name, options = CANDIDATES[name]
    start = time.perf_counter()
    model = MultiLabelModel(model_name, head_options=options).fit(train)
    return model, time.perf_counter() - start


def _facts(model, train_s: float) -> dict:
    """What a row reports of the fit itself."""
    return {"train_s": round(train_s, 1), "optimizer": model.history_.get("optimizer", "adam"),
            "parameters": _n_parameters(model)}


def _scores(model, train, test, known=None):
    """Metrics of ``model`` on ``test`` (labels aligned to the model's)."""
    predictions, marginals = model.predict_with_marginals(test, [DECODER])
    names = known if known is not None else list(model.label_names_)
    padded = {d: align_columns(p, model.label_names_, names) for d, p in predictions.items()}
    sets = evaluate_predictions(test.labels, padded, names)[DECODER]
    m = len(model.label_names_)
    extra = test.labels[:, m:] if known is not None else None
    rare = rare_code_scores(test.labels[:, :m], marginals, predictions[DECODER], label_counts(train.labels), extra)
    return {**sets, **rare}, padded[DECODER]


def inner(args) -> dict:
    data = load_dataset(args.data)
    train_rows, _ = kfold_indices(data.labels, n_folds=5, seed=0)[0]
    outer_train = data.subset(train_rows)
    inner_train, validation = train_validation_split(outer_train.labels, 0.2, seed=0)
    train, test = outer_train.subset(inner_train), outer_train.subset(validation)
    rows = {}
    for name in args.candidates:
        model, train_s = _fit(name, train)
        rows[name] = {**_scores(model, train, test)[0], **_facts(model, train_s)}
        print(name, json.dumps(rows[name]), flush=True)
    return {"data": str(args.data), "inner_train_rows": len(train), "validation_rows": len(test), "rows": rows}


def dev(args) -> dict:
    root = data_root() / "codiesp"
    train, test = load_dataset(str(root / "train.jsonl")), load_dataset(str(root / "dev.jsonl"))
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(test), len(test)) for _ in range(args.bootstrap)]
    rows = {}
    for name in args.candidates:
        model, train_s = _fit(name, train)
        known, _ = names_with_unknown(model.label_names_, test.label_names)
        aligned = test.with_label_names(known)
        scores, pred = _scores(model, train, aligned, known)
        # std over dev notes drawn with replacement: the spread a different dev set would give
        boot = [evaluate_predictions(aligned.labels[rows_], {DECODER: pred[rows_]}, known)[DECODER]
                for rows_ in draws]
        std = {metric: float(np.std([b[metric] for b in boot])) for metric in ("micro_f1", "tree_cost",
                                                                                "hierarchical_f1")}
        rows[name] = {**scores, "std": std, **_facts(model, train_s)}
        print(name, json.dumps(rows[name]), flush=True)
    return {"data": "codiesp train.jsonl -> dev.jsonl", "bootstrap": args.bootstrap, "rows": rows}


def _cv_row(path: str) -> dict:
    result = json.loads(Path(path).read_text())
    mean, std = result["metrics"][DECODER], result["std"][DECODER]
    rare = result.get("rare", {}).get(DECODER, {})
    return {"data": result.get("data"), "head_options": result.get("head_options"), "folds": result["folds"],
            **{m: mean[m] for m in SHOWN if m in mean}, **{m: rare[m] for m in SHOWN if m in rare},
            "std": {m: std[m] for m in SHOWN if m in std}, "train_s": round(float(np.sum(result["train_s"])), 1)}


def _cell(row: dict, metric: str) -> str:
    if metric not in row:
        return ""
    std = row.get("std", {}).get(metric)
    return f"{row[metric]:.3f}" + (f" ± {std:.3f}" if std is not None else "")


def table(args) -> dict:
    out = {"cv": {}, "dev": None, "inner": []}
    for pair in args.cv or []:
        key, _, path = pair.partition("=")
        out["cv"][key] = _cv_row(path)
    if args.dev:
        out["dev"] = json.loads(Path(args.dev).read_text())
    for path in args.inner or []:
        out["inner"].append(json.loads(Path(path).read_text()))
    header = "| run | " + " | ".join(SHOWN) + " | train s |\n|---|" + "---:|" * (len(SHOWN) + 1)
    lines = [header]
    for key, row in out["cv"].items():
        lines.append(f"| cv {key} | " + " | ".join(_cell(row, m) for m in SHOWN) + f" | {row['train_s']} |")
    if out["dev"]:
        for key, row in out["dev"]["rows"].items():
            lines.append(f"| CodiEsp train→dev {key} | " + " | ".join(_cell(row, m) for m in SHOWN)
                         + f" | {row['train_s']} |")
    for result in out["inner"]:
        for key, row in result["rows"].items():
            lines.append(f"| inner split of {Path(result['data']).name} {key} | "
                         + " | ".join(_cell(row, m) for m in SHOWN) + f" | {row['train_s']} |")
    write_atomic(RESULTS / "tree_sharing.json", json.dumps(out, indent=1) + "\n")
    write_atomic(RESULTS / "tree_sharing.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    one = sub.add_parser("inner")
    one.add_argument("data")
    one.add_argument("--candidates", nargs="+", default=["bce", "tree_sharing"], choices=sorted(CANDIDATES))
    one.add_argument("--out", required=True)
    two = sub.add_parser("dev")
    two.add_argument("--candidates", nargs="+", default=["bce", "tree_sharing"], choices=sorted(CANDIDATES))
    two.add_argument("--bootstrap", type=int, default=200)
    two.add_argument("--out", required=True)
    three = sub.add_parser("table")
    three.add_argument("--cv", nargs="*", help="NAME=FILE of `comorbid cv --json`")
    three.add_argument("--dev")
    three.add_argument("--inner", nargs="*")
    args = parser.parse_args(argv)
    result = {"inner": inner, "dev": dev, "table": table}[args.step](args)
    if args.step != "table":
        write_atomic(Path(args.out), json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
