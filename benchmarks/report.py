"""Markdown tables and bar charts from a comparison's JSON; the CMC summary in the README.

``python -m benchmarks.report`` regenerates every table and chart from the JSON files in
``benchmarks/results`` without rerunning anything.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from benchmarks.configs import METRIC_TITLES, METRICS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: The dataset whose summary the project README shows, between these markers.
README_DATASET = "cmc2007"
README_START = "<!-- bench:{name}:start -->"
README_END = "<!-- bench:{name}:end -->"
COLOURS = {"selected": "#1f4e9c", "ours": "#7fa7e0", "peer": "#e39a4c"}


def emit_json(result: dict[str, Any], path: str | Path | None) -> None:
    """Print a one-off benchmark's ``result`` as JSON and, given a ``path``, write it there
    (atomically: an interrupted run leaves the previous file whole)."""
    from comorbid.io import write_atomic

    text = json.dumps(result, indent=1)
    print(text)
    if path:
        write_atomic(path, text)


def _cell(value: dict[str, float], digits: int = 3) -> str:
    return f"{value['mean']:.{digits}f} ± {value['std']:.{digits}f}"


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def is_selected(row: dict[str, Any]) -> bool:
    return "selected_for" in row


def best_peer(rows: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    peers = [row for row in rows if row["kind"] == "peer"]
    if not peers:
        return None
    sign = 1.0 if METRICS[metric] else -1.0
    return max(peers, key=lambda row: sign * row["metrics"][metric]["mean"])


def comparison(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per metric: our selected row, the best peer row and whether ours is at least as good."""
    rows = result["rows"]
    out = []
    for metric, larger_is_better in METRICS.items():
        ours = next((row for row in rows if row.get("selected_for") == metric), None)
        peer = best_peer(rows, metric)
        entry = {"metric": metric, "ours": ours, "peer": peer, "at_least_equal": None, "difference": None}
        if ours is not None and peer is not None:
            difference = ours["metrics"][metric]["mean"] - peer["metrics"][metric]["mean"]
            entry["difference"] = difference if larger_is_better else -difference
            entry["at_least_equal"] = entry["difference"] >= 0
        out.append(entry)
    return out


def summary_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| metric | ours (chosen on inner validation) | best peer (best on the test folds) | verdict |",
        "|---|---|---|---|",
    ]
    for entry in comparison(result):
        metric = entry["metric"]
        arrow = "↑" if METRICS[metric] else "↓"
        ours = _cell(entry["ours"]["metrics"][metric]) if entry["ours"] else "—"
        peer = (f"{_cell(entry['peer']['metrics'][metric])} ({entry['peer']['method']})"
                if entry["peer"] else "— (no peer ran)")
        if entry["at_least_equal"] is None:
            verdict = "—"
        elif entry["at_least_equal"]:
            verdict = f"at least equal ({entry['difference']:+.3f})"
        else:
            verdict = f"**below the best peer** ({entry['difference']:+.3f})"
        lines.append(f"| {METRIC_TITLES[metric]} {arrow} | {ours} | {peer} | {verdict} |")
    return lines


def rows_table(rows: list[dict[str, Any]]) -> list[str]:
    header = " | ".join(f"{METRIC_TITLES[m]} {'↑' if up else '↓'}" for m, up in METRICS.items())
    lines = [f"| method | kind | {header} | train s | predict s |",
             "|---|---|" + "---:|" * len(METRICS) + "---:|---:|"]
    for row in rows:
        kind = "ours (selected)" if is_selected(row) else row["kind"]
        if row.get("features") == "own":
            kind += ", own features"
        cells = " | ".join(_cell(row["metrics"][m]) for m in METRICS)
        lines.append(f"| {row['method']} | {kind} | {cells} | {_seconds(row['train_s'])} | {_seconds(row['predict_s'])} |")
    return lines


def ordered_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = result["rows"]
    return ([r for r in rows if is_selected(r)] + [r for r in rows if r["kind"] == "ours" and not is_selected(r)]
            + [r for r in rows if r["kind"] == "peer"])


def selection_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for metric, names in result.get("selections", {}).items():
        if not names:
            continue
        counts: dict[str, int] = {}
        for name in names:
            counts[name] = counts.get(name, 0) + 1
        chosen = ", ".join(f"{name} ({count}/{len(names)})" for name, count in counts.items())
        lines.append(f"- {METRIC_TITLES[metric]}: {chosen}")
    return lines


def markdown(result: dict[str, Any]) -> str:
    env = result.get("environment", {})
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v)
    name = result["dataset"]
    lines = [
        f"# {result.get('title', name)}: our models beside peer methods",
        "",
        f"{result['folds']} iteratively stratified folds (seed {result['seed']}), {result.get('n_rows', '?')} rows, "
        f"{result.get('n_labels', '?')} labels; every method trained and tested on the same folds. "
        "Cells: mean ± standard deviation over the folds (ddof 0). Times: wall seconds per fold "
        "(train: fitting on the training fold; predict: the test fold), one thread "
        f"(torch threads {env.get('torch_threads')}, OMP/MKL/OpenBLAS "
        f"{'/'.join(str(v) for v in env.get('thread_variables', {}).values())}; {env.get('boomer_threads', '')}), "
        f"on {env.get('cpu', '?')} ({env.get('cores', '?')} cores), shared with other work while it ran "
        f"(load average {', '.join(f'{x:.1f}' for x in env.get('load_average_at_end') or [])} at the end), "
        "so times are inflated and only comparable within this table.",
        "",
        f"**Features (all methods):** {result['features']}",
        "",
        "## Our chosen configuration against the best peer",
        "",
        *summary_table(result),
        "",
        "\"Ours\" is chosen without the test folds: in each fold every configuration of "
        "`benchmarks/configs.py` is trained on "
        f"{100 * (1 - result.get('inner_validation_fraction', 0.2)):.0f}% of the training rows and, per metric, the "
        "(configuration, decoder) with the best score on the other "
        f"{100 * result.get('inner_validation_fraction', 0.2):.0f}% is the one whose test score counts. The best "
        "peer, by contrast, is the peer row with the best *test* mean, which favours the peers. Its train time "
        "includes that selection. Chosen per fold:",
        "",
        *selection_lines(result),
        "",
        "## Every row",
        "",
        *rows_table(ordered_rows(result)),
        "",
        "Charts: " + ", ".join(f"[{METRIC_TITLES[m]}]({name}_{m}.png)" for m in METRICS) + ".",
        "",
        "## Methods",
        "",
        "- Our rows are `<configuration> / <decoder>`: one model per fold read by several decoders "
        "(see `benchmarks/configs.py` and `benchmarks/README.md`).",
    ]
    for peer, description in result.get("peers", {}).items():
        lines.append(f"- `{peer}`: {description}.")
    if result.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in result["notes"]]
    lines += ["", f"Command: `{result.get('command', 'python -m benchmarks.compare')}` "
                  f"({result.get('wall_s', 0):.0f} s for this dataset). Versions: {versions}.", ""]
    return "\n".join(lines)


def plot(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """One horizontal bar chart per metric (mean with the standard deviation as error bar)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = ordered_rows(result)
    paths = []
    for metric, larger_is_better in METRICS.items():
        figure, axes = plt.subplots(figsize=(7.5, 0.9 + 0.19 * len(rows)), dpi=72)
        names = [row["method"] for row in rows][::-1]
        means = [row["metrics"][metric]["mean"] for row in rows][::-1]
        stds = [row["metrics"][metric]["std"] for row in rows][::-1]
        colours = [COLOURS["selected" if is_selected(r) else r["kind"]] for r in rows][::-1]
        axes.barh(range(len(rows)), means, xerr=stds, color=colours, height=0.7,
                  error_kw={"elinewidth": 0.8, "capsize": 1.5})
        axes.set_yticks(range(len(rows)), names, fontsize=7)
        axes.set_xlabel(f"{METRIC_TITLES[metric]} ({'higher' if larger_is_better else 'lower'} is better)", fontsize=8)
        axes.set_title(f"{result.get('title', result['dataset'])}: {METRIC_TITLES[metric]}, "
                       f"{result['folds']}-fold mean ± std", fontsize=9)
        axes.tick_params(axis="x", labelsize=7)
        axes.grid(axis="x", linewidth=0.3)
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLOURS.values()]
        figure.legend(handles, ["ours, chosen on inner validation", "ours, each configuration", "peer"],
                      fontsize=7, loc="lower center", ncol=3, frameon=False)
        figure.tight_layout(rect=(0, 0.35 / (0.9 + 0.19 * len(rows)), 1, 1))
        path = out_dir / f"{result['dataset']}_{metric}.png"
        figure.savefig(path, dpi=72, bbox_inches="tight")
        plt.close(figure)
        paths.append(path)
    return paths


def readme_block(result: dict[str, Any]) -> str:
    from benchmarks.configs import DATASETS

    name = result["dataset"]
    others = [spec.name for spec in DATASETS if spec.name != name]
    rows = [r for r in ordered_rows(result) if is_selected(r) or r["kind"] == "peer"]
    return "\n".join([
        f"{result.get('title', name)}, {result['folds']}-fold cross-validation (seed {result['seed']}), "
        "every method on the same folds and the same features. Mean ± std over folds; wall seconds per fold "
        "on a shared 2-core machine (inflated). Features: " + result["features"],
        "",
        *summary_table(result),
        "",
        *rows_table(rows),
        "",
        f"Every configuration, timings and charts: [benchmarks/results/{name}.md](benchmarks/results/{name}.md). "
        "The other tables: " + ", ".join(f"[{other}](benchmarks/results/{other}.md)" for other in others)
        + "; how it is run and where ours is below: [benchmarks/README.md](benchmarks/README.md). "
        "Regenerate with `make bench`.",
    ])


def update_readme(result: dict[str, Any], readme: Path = ROOT / "README.md") -> bool:
    """Replace the block between the dataset's markers in the README; False if it has none."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    start, end = README_START.format(name=result["dataset"]), README_END.format(name=result["dataset"])
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        return False
    readme.write_text(pattern.sub(lambda _: f"{start}\n{readme_block(result)}\n{end}", text))
    return True


def write_dataset_report(result: dict[str, Any], out_dir: Path) -> None:
    (out_dir / f"{result['dataset']}.md").write_text(markdown(result))
    plot(result, out_dir)
    if result["dataset"] == README_DATASET and out_dir.resolve() == RESULTS.resolve():
        update_readme(result)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.configs import DATASETS

    for spec in DATASETS:
        path = RESULTS / f"{spec.name}.json"
        if path.is_file():
            write_dataset_report(json.loads(path.read_text()), RESULTS)
            print(f"regenerated {spec.name}.md and its charts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
