"""Scale benchmark: training time, prediction speed, peak memory and accuracy as the number of
codes M and of notes N grow (issue 13, item 6).

Usage (from the repository root; ``make bench-scale`` runs the defaults in ``.venv-bench``)::

    python -m benchmarks.bench_scale                                   # 4 sizes x every method
    python -m benchmarks.bench_scale --sizes 1000x20000 --methods 'sklearn*' 'libmultilabel*'
    python -m benchmarks.bench_scale --sizes 200x1000 --methods 'ours*' --ours-options '{"train": {"max_epochs": 5}}'

Data: ``comorbid.data.synthetic_icd10_set(n_notes=N, n_codes=M, seed)`` (real ICD-10-CM codes,
Zipf frequencies, comorbidity profiles, negated distractors), rows split by the seed: 90% train,
10% test. Each method runs in a forked child (``benchmarks.isolation``) with a wall-time and a
memory limit, so a method that runs out of memory or time leaves an "out of memory"/"timeout"
cell, not a crash.

Per cell: ``train_s`` (wall seconds from raw texts to a trained model: for the peers the shared
TF-IDF featurisation, timed once per size in the parent, plus their fit), ``predict_notes_per_s``
(test notes scored per second, from raw text: TF-IDF transform plus scoring), the child's peak
resident memory (``peak_rss_gib``; it includes ``start_rss_gib``, the pages inherited from the
parent: the data set, its features and the imported libraries), and on the test rows P@8, MAP
and micro-F1 (``comorbid.metrics``; MAP is written here until ``mean_average_precision`` lands
in ``comorbid.metrics.ranking``).

Results merge into ``benchmarks/results/scale.json`` (a cell is replaced when its method and size
are run again) and are redrawn as ``scale.md`` (a table) and ``scale.png`` (train seconds and peak
memory against M and N). ``--report`` redraws them from the JSON without running anything.
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy, numba or torch start their pools (recorded in the results).
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import fnmatch
import json
import platform
import resource
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp

from benchmarks.isolation import run_isolated
from comorbid.data import MultiLabelDataset, synthetic_icd10_set
from comorbid.metrics import micro_f1, precision_at_k

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: (M codes, N notes) of the full run: {1,000, 5,000} x {20,000, 50,000}.
SIZES = ((1000, 20000), (1000, 50000), (5000, 20000), (5000, 50000))
TEST_FRACTION = 0.1
#: The peers' shared featurisation: word 1-2-grams seen in 2+ training notes, sublinear tf.
TFIDF = {"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True, "max_features": 200_000}
K = 8


# ------------------------------------------------------------------------------ cells
@dataclass
class Cell:
    """What a method gets: raw texts, labels ``[n, M]`` int8 and, for the peers, the shared
    TF-IDF features (``None`` for methods that featurise themselves)."""

    train_texts: list[str]
    test_texts: list[str]
    train_labels: np.ndarray
    label_names: list[str]
    x_train: sp.csr_matrix | None
    x_test: sp.csr_matrix | None
    seed: int
    ours_options: dict[str, Any]


@dataclass(frozen=True)
class Method:
    """A method of the benchmark. ``run(cell)`` trains and scores the test notes, returning
    ``{"scores": [n_test, M], "predicted": [n_test, M] 0/1, "fit_s", "predict_s"}`` (seconds
    of its own work: for the peers after the shared featurisation)."""

    name: str
    description: str
    run: Callable[[Cell], dict[str, Any]]
    features: bool  # uses the shared TF-IDF features
    requires: str | None = None  # module that must be importable
    default: bool = True  # part of a run without --methods


def _timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def _cpu_s() -> float:
    """CPU seconds (user + system) this process has used: unlike wall time, hardly moved by
    other work on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sklearn_ovr_svc(n_jobs: int) -> Callable[[Cell], dict[str, Any]]:
    def run(cell: Cell) -> dict[str, Any]:
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.svm import LinearSVC

        model = OneVsRestClassifier(LinearSVC(), n_jobs=n_jobs)
        # Booleans, not int8: scikit-learn 1.9.1's LabelBinarizer scrambles the columns of an
        # int8 label matrix with more than 128 columns (OneVsRestClassifier then learns the
        # wrong codes: P@8 0.006 at 1,000 codes); a bool matrix is binarised correctly.
        labels = cell.train_labels.astype(bool)
        _, fit_s = _timed(lambda: model.fit(cell.x_train, labels))
        scores, predict_s = _timed(lambda: model.decision_function(cell.x_test))
        return {"scores": scores, "predicted": scores > 0, "fit_s": fit_s, "predict_s": predict_s}

    return run


def _one_core_for_libmultilabel() -> None:
    """LibMultiLabel starts one trainer thread per physical core (``psutil.cpu_count``) and
    passes ``-m <cores>`` to liblinear; the child (a forked process, so this stays there)
    reports one core, as every method here gets one."""
    import psutil

    psutil.cpu_count = lambda logical=True: 1


def _libmultilabel(technique: str) -> Callable[[Cell], dict[str, Any]]:
    """LibMultiLabel's linear methods with its default liblinear options (L2-regularised
    squared-hinge SVM, dual, C=1, no bias): ``1vsrest`` and ``tree`` (Bonsai-style label tree,
    K=100, dmax=10, beam width 10; Khandagale, Xiao and Babbar, 2020, Machine Learning 109).
    The tree's scores are probability estimates (0 outside the beam): micro-F1 thresholds
    them at 0.5; the 1-vs-rest decision values at 0."""

    def run(cell: Cell) -> dict[str, Any]:
        _one_core_for_libmultilabel()
        import libmultilabel.linear as linear

        np.random.seed(cell.seed)  # train_tree's k-means draws from numpy's global generator
        y = sp.csr_matrix(cell.train_labels, dtype=np.float64)
        if technique == "1vsrest":
            model, fit_s = _timed(lambda: linear.train_1vsrest(y, cell.x_train, options="-m 1", verbose=False))
            threshold = 0.0
        else:
            model, fit_s = _timed(lambda: linear.train_tree(y, cell.x_train, options="-m 1", verbose=False))
            threshold = 0.5
        scores, predict_s = _timed(lambda: np.asarray(linear.predict_values(model, cell.x_test)))
        return {"scores": scores, "predicted": scores > threshold, "fit_s": fit_s, "predict_s": predict_s}

    return run


def _ours(model: str | None) -> Callable[[Cell], dict[str, Any]]:
    """``MultiLabelModel(**ours_options)`` (``model`` overrides the head): its own encoder from
    raw text, its default decoder (``hamming``) for micro-F1, marginals as scores."""

    def run(cell: Cell) -> dict[str, Any]:
        import torch

        from comorbid.model import MultiLabelModel

        torch.set_num_threads(1)
        options = dict(cell.ours_options)
        if model is not None:
            options["model"] = model
        train = MultiLabelDataset(
            ids=[str(i) for i in range(len(cell.train_texts))], inputs=cell.train_texts,
            labels=cell.train_labels, label_names=cell.label_names, name="scale-train",
        )
        cpu = _cpu_s()
        fitted, fit_s = _timed(lambda: MultiLabelModel(**options).fit(train))
        fit_cpu_s, cpu = _cpu_s() - cpu, _cpu_s()
        scores, predict_s = _timed(lambda: fitted.marginals(cell.test_texts))
        predict_cpu_s = _cpu_s() - cpu
        predicted, decode_s = _timed(lambda: fitted.predict(cell.test_texts, ["hamming"])["hamming"])
        return {"scores": scores, "predicted": predicted, "fit_s": fit_s, "predict_s": predict_s,
                "decode_s": decode_s, "fit_cpu_s": fit_cpu_s, "predict_cpu_s": predict_cpu_s,
                "train_config": fitted.train_config_.to_dict(), "history": _short_history(fitted.history_)}

    return run


def _short_history(history: dict[str, Any]) -> dict[str, Any]:
    """What a trained model's history says about how it trained, losses rounded."""
    return {key: ([round(float(x), 5) for x in value] if isinstance(value, list) else value)
            for key, value in history.items() if key != "members"}


METHODS = (
    Method("sklearn-ovr-svc", "scikit-learn OneVsRestClassifier(LinearSVC()), n_jobs=1, ranked by decision_function",
           _sklearn_ovr_svc(1), features=True),
    Method("sklearn-ovr-svc-all-cores", "the same with n_jobs=-1 (every core; not single-thread, opt-in)",
           _sklearn_ovr_svc(-1), features=True, default=False),
    Method("libmultilabel-1vsrest", "LibMultiLabel linear.train_1vsrest, default liblinear options",
           _libmultilabel("1vsrest"), features=True, requires="libmultilabel"),
    Method("libmultilabel-tree", "LibMultiLabel linear.train_tree (K=100, dmax=10), beam width 10",
           _libmultilabel("tree"), features=True, requires="libmultilabel"),
    Method("ours", "comorbid MultiLabelModel() with default flags (chain head, clinical encoder)", _ours(None),
           features=False),
    Method("ours-independent", "comorbid MultiLabelModel(model='independent')", _ours("independent"), features=False),
)


# ------------------------------------------------------------------------------ metrics
def _map(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean average precision over rows: ``AP_i = 1/|Y_i| sum_{j in Y_i} |{l in Y_i: rank(l) <= rank(j)}| / rank(j)``,
    rows without a true label left out; ties: the lower column ranks first (as ``precision_at_k``).

    Switch to ``comorbid.metrics.mean_average_precision`` once it is in the tree (being added to
    ``comorbid/metrics/ranking.py``). Equals scikit-learn's ``label_ranking_average_precision_score``
    when no scores tie.
    """
    sizes = y_true.sum(axis=1)
    rows = np.flatnonzero(sizes > 0)
    if len(rows) == 0:
        return 0.0
    block = max(1, (1 << 22) // y_true.shape[1])
    total = 0.0
    for start in range(0, len(rows), block):
        chunk = rows[start:start + block]
        order = np.argsort(-y_score[chunk], axis=1, kind="stable")
        gold = np.take_along_axis(y_true[chunk], order, axis=1).astype(np.float64)
        precision = np.cumsum(gold, axis=1) / np.arange(1, y_true.shape[1] + 1)
        total += float(((precision * gold).sum(axis=1) / sizes[chunk]).sum())
    return total / len(rows)


def score(y_true: np.ndarray, scores: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    scores = np.asarray(scores, dtype=np.float64)
    return {
        "p_at_8": precision_at_k(y_true, scores, K),
        "map": _map(y_true, scores),
        "micro_f1": micro_f1(y_true, np.asarray(predicted).astype(np.int8)),
    }


# ------------------------------------------------------------------------------ running
def _rss_gib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def _measure(method: Method, cell: Cell) -> dict[str, Any]:
    """In the child: run the method; send back scores (float32) and the sparse prediction."""
    start_rss = _rss_gib("VmRSS")
    result = method.run(cell)
    return {
        "scores": np.asarray(result["scores"], dtype=np.float32),
        "predicted": sp.csr_matrix(np.asarray(result["predicted"]).astype(np.int8)),
        "fit_s": result["fit_s"],
        "predict_s": result["predict_s"],
        "decode_s": result.get("decode_s"),
        "fit_cpu_s": result.get("fit_cpu_s"),
        "predict_cpu_s": result.get("predict_cpu_s"),
        "cpu_s": _cpu_s(),
        "train_config": result.get("train_config"),
        "history": result.get("history"),
        "start_rss_gib": start_rss,
        "peak_rss_gib": max(_rss_gib("VmHWM"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20),
    }


def _status(message: str) -> str:
    if message.startswith("too slow"):
        return "timeout"
    if message.startswith("out of memory") or "MemoryError" in message:
        return "out of memory"
    return "error"


def split_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test rows (10% test), shuffled by the seed."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(TEST_FRACTION * n)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def run_size(n_codes: int, n_notes: int, methods: Sequence[Method], seed: int, seconds: float, memory_gib: float,
             ours_options: dict[str, Any], log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every method at one size; one cell (a dict) per method."""
    data, data_s = _timed(lambda: synthetic_icd10_set(n_notes=n_notes, n_codes=n_codes, seed=seed))
    train_rows, test_rows = split_rows(n_notes, seed)
    train_texts = [data.inputs[i] for i in train_rows]
    test_texts = [data.inputs[i] for i in test_rows]
    train_labels, test_labels = data.labels[train_rows], data.labels[test_rows]
    label_names = list(data.label_names)
    del data
    log(f"{n_codes} codes x {n_notes} notes: generated in {data_s:.1f} s; "
        f"{len(train_rows)} train, {len(test_rows)} test notes")
    x_train = x_test = None
    featurise_s = transform_s = 0.0
    if any(m.features for m in methods):
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(**TFIDF)
        x_train, featurise_s = _timed(lambda: vectorizer.fit_transform(train_texts).tocsr())
        x_test, transform_s = _timed(lambda: vectorizer.transform(test_texts).tocsr())
        log(f"  TF-IDF: {x_train.shape[1]} features, {featurise_s:.1f} s fit, {transform_s:.1f} s test")
    cells = []
    for method in methods:
        cell = {"method": method.name, "description": method.description, "codes": n_codes, "notes": n_notes,
                "train_notes": len(train_rows), "test_notes": len(test_rows), "seed": seed,
                "generate_s": data_s, "time_limit_s": seconds, "memory_limit_gib": memory_gib,
                "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if method.features:
            cell.update(features=x_train.shape[1], featurise_s=featurise_s, transform_s=transform_s)
        if method.name.startswith("ours"):
            cell["ours_options"] = ours_options
        if method.requires and find_spec(method.requires) is None:
            cell.update(status="not installed", message=f"needs {method.requires}")
            log(f"  {method.name}: not installed ({method.requires})")
            cells.append(cell)
            continue
        work = Cell(train_texts, test_texts, train_labels, label_names,
                    x_train if method.features else None, x_test if method.features else None, seed, ours_options)
        try:
            result, wall_s = _timed(lambda: run_isolated(lambda: _measure(method, work), seconds, memory_gib))
        except RuntimeError as error:
            cell.update(status=_status(str(error)), message=str(error))
            log(f"  {method.name}: {cell['status']} ({error})")
            cells.append(cell)
            continue
        train_s = result["fit_s"] + (featurise_s if method.features else 0.0)
        predict_s = result["predict_s"] + (transform_s if method.features else 0.0)
        cell.update(status="ok", train_s=train_s, fit_s=result["fit_s"], predict_s=predict_s,
                    predict_notes_per_s=len(test_rows) / predict_s, decode_s=result["decode_s"],
                    peak_rss_gib=result["peak_rss_gib"], start_rss_gib=result["start_rss_gib"],
                    child_wall_s=wall_s, child_cpu_s=result["cpu_s"],
                    **{key: result[key] for key in ("fit_cpu_s", "predict_cpu_s", "train_config", "history")
                       if result.get(key) is not None},
                    **score(test_labels, result["scores"], result["predicted"].toarray()))
        if result.get("predict_cpu_s"):
            cell["predict_notes_per_cpu_s"] = len(test_rows) / result["predict_cpu_s"]
        log(f"  {method.name}: train {train_s:.1f} s (CPU {result.get('fit_cpu_s') or float('nan'):.1f} s), "
            f"{cell['predict_notes_per_s']:.0f} notes/s, "
            f"peak {cell['peak_rss_gib']:.2f} GiB, P@8 {cell['p_at_8']:.3f}, MAP {cell['map']:.3f}, "
            f"micro-F1 {cell['micro_f1']:.3f}")
        cells.append(cell)
    return cells


def environment() -> dict[str, Any]:
    versions = {"python": platform.python_version()}
    for package in ("numpy", "scipy", "scikit-learn", "torch", "libmultilabel", "liblinear-multicore"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "thread_variables": {v: os.environ.get(v) for v in
                             ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")},
        "versions": versions,
        "load_average_at_end": list(os.getloadavg()),
    }


def _cpu_name() -> str:
    # As benchmarks.bench_losses.cpu_name, without importing torch into the parent first.
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def merge(path: Path, cells: list[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    """The results in ``path`` with ``cells`` replacing those of the same method and size."""
    results = json.loads(path.read_text()) if path.is_file() else {"benchmark": "scale", "cells": [], "runs": []}
    fresh = {(c["method"], c["codes"], c["notes"]) for c in cells}
    kept = [c for c in results["cells"] if (c["method"], c["codes"], c["notes"]) not in fresh]
    results["cells"] = sorted(kept + cells, key=lambda c: (c["codes"], c["notes"], c["method"]))
    results["runs"].append(run)
    return results


# ------------------------------------------------------------------------------ report
_COLUMNS = (("train s", "train_s", "{:.1f}"), ("fit s", "fit_s", "{:.1f}"),
            ("predict notes/s", "predict_notes_per_s", "{:,.0f}"), ("fit CPU s", "fit_cpu_s", "{:.1f}"),
            ("predict notes/CPU s", "predict_notes_per_cpu_s", "{:,.0f}"), ("peak RSS GiB", "peak_rss_gib", "{:.2f}"),
            ("at start", "start_rss_gib", "{:.2f}"), ("P@8", "p_at_8", "{:.3f}"), ("MAP", "map", "{:.3f}"),
            ("micro-F1", "micro_f1", "{:.3f}"))


def markdown(results: dict[str, Any]) -> str:
    lines = ["# Scale benchmark", "",
             "Synthetic ICD-10-CM notes (`comorbid.data.synthetic_icd10_set`, seed 0), 10% of the notes held out. "
             "`train s` is from raw text to a trained model (for the peers: the shared TF-IDF featurisation plus "
             "`fit s`); `predict notes/s` scores test notes from raw text; `peak RSS` is the child process's "
             "peak resident memory, including `at start` (the data, features and libraries it inherits from the "
             "parent). `fit CPU s` and `predict notes/CPU s` count CPU seconds (user + system) instead of wall "
             "seconds (recorded for ours since issue 13): on a shared machine they hardly depend on the load, "
             "and on a quiet one-thread run wall and CPU time agree. One thread. See `benchmarks/README.md` "
             "(bench-scale).", ""]
    header = "| method | M | N | " + " | ".join(name for name, _, _ in _COLUMNS) + " |"
    lines += [header, "|" + "---|" * (3 + len(_COLUMNS))]
    for cell in results["cells"]:
        values = []
        for index, (_, key, form) in enumerate(_COLUMNS):
            if cell["status"] != "ok":
                values.append(cell["status"] if index == 0 else "")
            elif cell.get(key) is None:
                values.append("")
            else:
                values.append(form.format(cell[key]))
        lines.append(f"| {cell['method']} | {cell['codes']:,} | {cell['notes']:,} | " + " | ".join(values) + " |")
    lines += ["", "Methods:", ""]
    for name, description in dict((c["method"], c["description"]) for c in results["cells"]).items():
        lines.append(f"- `{name}`: {description}")
    failed = [c for c in results["cells"] if c["status"] != "ok"]
    if failed:
        lines += ["", "Cells without a result:", ""]
        lines += [f"- `{c['method']}` at {c['codes']:,} x {c['notes']:,}: {c.get('message', c['status'])}" for c in failed]
    lines += ["", "Runs (newest last):", ""]
    for run in results["runs"]:
        env = run["environment"]
        lines.append(f"- `{run['command']}` ({run['size']}) started {run['started_at']}: {run['wall_s']:.0f} s; {env['cpu']}, "
                     f"{env['cores']} cores, load average at end {', '.join(f'{x:.1f}' for x in env['load_average_at_end'])}; "
                     + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v))
    return "\n".join(lines) + "\n"


_LETTER = {"codes": "M", "notes": "N"}


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [c for c in results["cells"] if c["status"] == "ok"]
    methods = list(dict.fromkeys(c["method"] for c in cells))
    colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(methods)}
    figure, axes = plt.subplots(2, 2, figsize=(11, 8))
    for row, (key, label) in enumerate((("train_s", "train seconds"), ("peak_rss_gib", "peak RSS (GiB)"))):
        for column, (along, fixed, name) in enumerate((("notes", "codes", "N (notes)"), ("codes", "notes", "M (codes)"))):
            axis = axes[row, column]
            for method in methods:
                for value in sorted({c[fixed] for c in cells if c["method"] == method}):
                    points = sorted((c[along], c[key]) for c in cells if c["method"] == method and c[fixed] == value)
                    if points:
                        xs, ys = zip(*points)
                        style = "-" if value == max(c[fixed] for c in cells) else "--"
                        axis.plot(xs, ys, style, marker="o", color=colors[method],
                                  label=f"{method}, {_LETTER[fixed]}={value:,}")
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xlabel(name)
            axis.set_ylabel(label)
            axis.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    axes[0, 1].legend(fontsize=7)
    figure.suptitle("Scale benchmark (synthetic ICD-10-CM notes, one thread)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(results: dict[str, Any], out_dir: Path) -> None:
    (out_dir / "scale.md").write_text(markdown(results))
    plot(results, out_dir / "scale.png")


# ------------------------------------------------------------------------------ main
def parse_size(text: str) -> tuple[int, int]:
    try:
        codes, notes = (int(part.replace(",", "").replace("_", "")) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"Expected a size MxN such as 1000x20000 (codes x notes), got {text!r}")
    if codes < 2 or notes < 10:
        raise argparse.ArgumentTypeError(f"Expected at least 2 codes and 10 notes, got {text!r}")
    return codes, notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=list(SIZES),
                        help="MxN sizes, codes x notes (default: 1000x20000 1000x50000 5000x20000 5000x50000)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help=f"shell patterns over {', '.join(m.name for m in METHODS)} (default: all but opt-in ones)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=3600.0, help="seconds per method and size")
    parser.add_argument("--memory-gib", type=float, default=20.0, help="memory per method and size, above the data")
    parser.add_argument("--ours-options", type=json.loads, default={},
                        help="JSON keyword arguments of comorbid's MultiLabelModel for the ours* methods")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report", action="store_true", help="only redraw scale.md and scale.png from scale.json")
    args = parser.parse_args(argv)
    path = args.out / "scale.json"
    if args.report:
        if not path.is_file():
            print(f"No results at {path}", file=sys.stderr)
            return 2
        write_report(json.loads(path.read_text()), args.out)
        return 0
    if args.methods is None:
        methods = [m for m in METHODS if m.default]
    else:
        methods = [m for m in METHODS if any(fnmatch.fnmatch(m.name, p) for p in args.methods)]
    if not methods:
        print(f"No method matches {args.methods}; methods: {', '.join(m.name for m in METHODS)}", file=sys.stderr)
        return 2
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    command = "python -m benchmarks.bench_scale " + " ".join(sys.argv[1:] if argv is None else argv)
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    for n_codes, n_notes in args.sizes:
        cells = run_size(n_codes, n_notes, methods, args.seed, args.time_limit, args.memory_gib, args.ours_options,
                         log=lambda line: print(line, flush=True))
        for cell in cells:
            cell["command"] = command
        run = {"command": command, "started_at": started_at, "wall_s": time.perf_counter() - start,
               "size": f"{n_codes}x{n_notes}", "environment": environment()}
        results = merge(path, cells, run)
        path.write_text(json.dumps(results, indent=1) + "\n")
        write_report(results, args.out)
    print(f"scale benchmark: {time.perf_counter() - start:.0f} s -> {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
