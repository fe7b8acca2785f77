"""Do `comorbid inspect`'s predicted gains match the gains measured on unseen rows?

For each data set: an outer stratified 80/20 split (seed 0). `inspect` runs on the training
part only (its own inner 80/20 split: the chain and the independent model fitted on 64% of the
rows, predictions made on the other 16%). Then the same inner-split chain (it never saw the
test rows) decodes the test rows with each metric's Bayes decoder and with thresholded marginals
(`hamming`); the measured gain is the difference of the test metric. `micro-f1`'s threshold is
tuned on the inner held-out rows' gold labels (as `train --decode micro-f1` tunes it on held-out
folds). The held-out log-likelihood gain of chain over independent is measured on the test rows
too. Per metric, Spearman's rank correlation between predicted and measured gain over the data
sets (scipy.stats.spearmanr), and the same for inspect's "observed on the inner held-out rows".

Data: CMC 2007, CodiEsp (train + dev, codes seen >= 15 times), MEKA emotions, scene, enron, and
synthetic sets with known dependence: `dependent_label_problem` at strength 0 (labels are fair
coins, independent of everything), 1, 2, 4 (a ring of overlapping label pairs, stronger with
strength), and labels independent given x.

Run (from the repository root; ~15-30 min on 2 shared cores):

    PYTHONPATH=src python benchmarks/inspect_validation.py --out benchmarks/results/inspect_validation
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from comorbid.data import dependent_label_problem, load_dataset, train_validation_split
from comorbid.data.dataset import MultiLabelDataset
from comorbid.data.paths import data_root
from comorbid.heldout import HeldOut
from comorbid.inspection import METRIC_DECODERS, heldout_dependence, inspect_dataset, model_factories
from comorbid.io import write_atomic
from comorbid.metrics import evaluate
from comorbid.metrics.utility import mean_utility

METRICS = ("subset_accuracy", "instance_f1", "micro_f1")  # hamming's gain is 0 by construction


def _codiesp(root: Path, min_count: int = 15) -> MultiLabelDataset:
    parts = [load_dataset(str(root / "codiesp" / name)) for name in ("train.jsonl", "dev.jsonl")]
    names = sorted(set(parts[0].label_names) | set(parts[1].label_names))
    labels = np.concatenate([part.with_label_names(names).labels for part in parts])
    keep = labels.sum(0) >= min_count
    return MultiLabelDataset([i for part in parts for i in part.ids], [t for part in parts for t in part.inputs],
                             labels[:, keep], [n for n, k in zip(names, keep) if k], None, {},
                             f"codiesp (codes seen >= {min_count} times)")


def _independent_given_x(n: int = 2500, seed: int = 0) -> MultiLabelDataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    w = 1.5 * rng.normal(size=(8, 6))
    y = (rng.random((n, 6)) < 1 / (1 + np.exp(-(x @ w)))).astype(np.int8)
    return MultiLabelDataset([str(i) for i in range(n)], x, y, [f"y{j}" for j in range(6)],
                             [f"x{d}" for d in range(8)], {}, "synthetic: independent given x")


def datasets(root: Path) -> dict:
    """name -> a function giving the data set (loaded lazily: one at a time in memory)."""
    found = {
        "cmc2007": lambda: load_dataset(str(root / "cmc2007" / "2007ChallengeTrainData.xml")),
        "codiesp": lambda: _codiesp(root),
        "emotions": lambda: load_dataset(str(root / "meka" / "Music.arff")),
        "scene": lambda: load_dataset(str(root / "meka" / "Scene.arff.bz2")),
        "enron": lambda: load_dataset(str(root / "meka" / "Enron.arff.bz2")),
        "independent-given-x": _independent_given_x,
    }
    for strength in (0.0, 1.0, 2.0, 4.0):
        found[f"ring-strength-{strength:g}"] = (
            lambda s=strength: _named(dependent_label_problem(n=2500, seed=0, strength=s)[0], f"ring strength {s:g}"))
    return found


def _named(dataset: MultiLabelDataset, name: str) -> MultiLabelDataset:
    dataset.name = name
    return dataset


def _scores(gold: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The metrics as inspect predicts them: per-row utilities (instance F1 of two empty sets is
    1) and pooled micro-F1."""
    return {"subset_accuracy": mean_utility("subset", predicted, gold),
            "instance_f1": mean_utility("instance-f1", predicted, gold),
            "micro_f1": evaluate(gold, predicted)["micro_f1"]}


def measure(dataset: MultiLabelDataset, samples: int, seed: int) -> dict:
    start = time.perf_counter()
    train_rows, test_rows = train_validation_split(dataset.labels, 0.2, seed)
    train, test = dataset.subset(train_rows), dataset.subset(test_rows)
    nonempty = bool((dataset.labels.sum(1) > 0).all())
    result = inspect_dataset(train, *model_factories(train={"seed": seed}, nonempty=nonempty), samples=samples,
                             seed=seed)
    joint, independent = result.joint_model_, result.independent_model_
    inner = train.subset(result.heldout_rows_)
    # micro-f1's threshold from the inner held-out rows' gold labels, as `train --decode micro-f1` does
    joint.fit_decoders(["micro-f1"], HeldOut(joint.marginals(inner), inner.labels))
    decoders = {"hamming": "hamming", **{m: METRIC_DECODERS[m] for m in METRICS}}
    predictions = joint.predict(test, list(decoders.values()))
    scores = {metric: _scores(test.labels, predictions[spec]) for metric, spec in decoders.items()}
    baseline_independent = _scores(test.labels, independent.predict(test, ["hamming"])["hamming"])
    test_dependence = heldout_dependence(joint, independent, test, len(result.train_rows_))
    gains = {g.metric: g for g in result.gains}
    row = {
        "data": dataset.name, "rows": len(dataset), "labels": dataset.n_labels, "test_rows": len(test),
        "inspect_s": result.seconds, "total_s": time.perf_counter() - start,
        "ll_gain_inner": result.dependence.gain, "ll_gain_inner_se": result.dependence.gain_se,
        "ll_gain_test": test_dependence.gain, "ll_gain_test_se": test_dependence.gain_se,
        "recommendations": {r.metric: f"{r.model} / {r.decoder}" for r in result.recommendations},
        "cardinality": result.statistics.cardinality, "distinct_sets": result.statistics.distinct_sets,
        "exclusions": result.statistics.n_exclusions,
    }
    for metric in METRICS:
        row[metric] = {
            "predicted": gains[metric].predicted_gain, "predicted_se": gains[metric].predicted_gain_se,
            "observed_inner": gains[metric].observed_gain,
            "measured": scores[metric][metric] - scores["hamming"][metric],
            "test_decoder": scores[metric][metric], "test_thresholded": scores["hamming"][metric],
            "test_independent_thresholded": baseline_independent[metric],
        }
    return row


def correlations(rows: list[dict]) -> dict:
    out = {}
    for metric in METRICS:
        measured = [r[metric]["measured"] for r in rows]
        out[metric] = {}
        for source in ("predicted", "observed_inner"):
            rho, p = spearmanr([r[metric][source] for r in rows], measured)
            out[metric][source] = {"spearman": float(rho), "p": float(p), "n": len(rows)}
    rho, p = spearmanr([r["ll_gain_inner"] for r in rows], [r["ll_gain_test"] for r in rows])
    out["log_likelihood"] = {"inner_vs_test": {"spearman": float(rho), "p": float(p), "n": len(rows)}}
    return out


def markdown(rows: list[dict], corr: dict, args) -> str:
    lines = [
        "# Predicted vs measured gain of joint decoding (`benchmarks/inspect_validation.py`)", "",
        f"`PYTHONPATH=src python benchmarks/inspect_validation.py --samples {args.samples} --seed {args.seed}` "
        "(outer 80/20 split; inspect on the training part; measured on the test part with the inner-split chain). "
        "Gains are in metric units (decoder minus marginals thresholded at 1/2); LL in nats per row.", "",
        "| data | rows | labels | LL gain inner | LL gain test | " + " | ".join(
            f"{m} predicted | {m} inner | {m} measured" for m in METRICS) + " | recommendation (subset / instance F1 / micro-F1) |",
        "|---|---:|---:|---:|---:|" + "---:|" * (3 * len(METRICS)) + "---|",
    ]
    for r in rows:
        cells = [r["data"], str(r["rows"]), str(r["labels"]), f"{r['ll_gain_inner']:+.3f} ± {r['ll_gain_inner_se']:.3f}",
                 f"{r['ll_gain_test']:+.3f} ± {r['ll_gain_test_se']:.3f}"]
        for m in METRICS:
            cells += [f"{r[m]['predicted']:+.3f}", f"{r[m]['observed_inner']:+.3f}", f"{r[m]['measured']:+.3f}"]
        rec = r["recommendations"]
        cells.append("; ".join(rec[m] for m in METRICS))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Spearman rank correlation with the measured gain, over the data sets:", "",
              "| metric | predicted (expected under the chain) | observed on inspect's inner held-out rows |",
              "|---|---:|---:|"]
    for m in METRICS:
        c = corr[m]
        lines.append(f"| {m} | {c['predicted']['spearman']:+.2f} (p={c['predicted']['p']:.3f}) | "
                     f"{c['observed_inner']['spearman']:+.2f} (p={c['observed_inner']['p']:.3f}) |")
    ll = corr["log_likelihood"]["inner_vs_test"]
    lines += ["", f"Held-out log-likelihood gain, inner split vs test: Spearman {ll['spearman']:+.2f} (p={ll['p']:.3f}).",
              ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", help="data set names (default: all)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/inspect_validation", help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    available = datasets(Path(data_root()))
    names = args.data or list(available)
    out = Path(args.out)
    previous = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    done = {r["key"]: r for r in previous.get("rows", [])}
    for name in names:
        if name in done:
            continue
        row = measure(available[name](), args.samples, args.seed)
        row["key"] = name
        done[name] = row
        print(f"{name}: {row['total_s']:.0f} s, LL gain {row['ll_gain_inner']:+.3f} (test {row['ll_gain_test']:+.3f}); "
              + ", ".join(f"{m} {row[m]['predicted']:+.3f} vs {row[m]['measured']:+.3f}" for m in METRICS), flush=True)
        rows = [done[n] for n in available if n in done]
        payload = {"args": vars(args), "rows": rows,
                   "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        if len(rows) >= 3:
            payload["spearman"] = correlations(rows)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out.with_suffix(".json"), json.dumps(payload, indent=1))
        if len(rows) >= 3:
            write_atomic(out.with_suffix(".md"), markdown(rows, payload["spearman"], args))


if __name__ == "__main__":
    main()
