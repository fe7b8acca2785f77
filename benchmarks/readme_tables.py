"""The CMC 2007 tables of the README: every model x decoder, every loss, the training options.

Each row is exactly ``comorbid cv CMC.xml [flags]`` (5 iteratively stratified folds, seed 0):
the same function the CLI calls, with the flags written in the row's ``command`` field of the
JSON. Run from the repository root:

    python -m benchmarks.readme_tables models    # joint models x decoders  -> results/readme_models.{json,md}
    python -m benchmarks.readme_tables losses    # independent head x loss -> results/readme_losses.{json,md}
    python -m benchmarks.readme_tables options   # calibration, bagging, balance, orders, seeds
                                                 #                          -> results/readme_options.{json,md}

The data is read from ``$COMORBID_DATA`` or ``../shared/data`` (``cmc2007/2007ChallengeTrainData.xml``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

from comorbid.cli import _make_model
from comorbid.data import data_root, read_cmc_xml
from comorbid.evaluation import REPORTED_METRICS, cross_validate

RESULTS = Path(__file__).parent / "results"
ALL_DECODERS = "hamming,subset,instance-f1,jaccard,top-k=1,micro-f1,macro-f1,mbr"
MODELS = ["independent", "chain", "chain-ensemble", "mixture", "powerset", "ising"]
LOSSES = ["bce", "focal", "asymmetric", "bp_mll", "lsep", "zlpr", "pairwise_hinge", "sigmoid_f1", "soft_jaccard",
          "wasserstein", "hierarchical"]


def rows_for(table: str) -> list[list[str]]:
    """The ``comorbid cv`` flags of every row of a table."""
    if table == "models":
        return [["--model", model, "--decode", ALL_DECODERS] for model in MODELS]
    if table == "losses":
        return [["--model", "independent", "--loss", loss, "--decode", "hamming,subset,instance-f1"]
                for loss in LOSSES]
    decode = ["--decode", "hamming,subset,instance-f1"]
    return [  # the defaults themselves are the `--model chain` rows of the models table
        ["--calibrate", *decode],
        ["--ensemble", "5", *decode],
        ["--balance", "sqrt", *decode],
        ["--head-option", "order=rare-first", *decode],
        ["--head-option", "order=frequency", *decode],
        ["--seed", "1", *decode],
        ["--seed", "2", *decode],
        ["--encoder", "tfidf", *decode],
        ["--encoder-option", "char_ngram_range=null", *decode],
        ["--penalty", "l2", *decode],
        ["--nonempty", "no", *decode],
    ]


def parse(flags: list[str]) -> dict:
    """The handful of ``cv`` flags these tables use, with the CLI's defaults."""
    options = {"model": "chain", "encoder": "auto", "loss": None, "weight_decay": None, "seed": 0, "penalty": None,
               "head_option": [], "encoder_option": [], "nonempty": "auto", "calibrate": False, "ensemble": 1, "balance": None,
               "decode": "hamming,subset,instance-f1"}
    it = iter(flags)
    for flag in it:
        key = flag.lstrip("-").replace("-", "_")
        if key == "calibrate":
            options[key] = True
        elif key in ("head_option", "encoder_option"):
            options[key].append(next(it))
        else:
            value = next(it)
            options[key] = int(value) if key in ("seed", "ensemble") else value
    return options


def run(table: str, data: Path, only: str | None = None) -> None:
    """Run the table's rows (those whose flags contain ``only``, if given), keeping the rows of an
    earlier run of the same table that are not rerun, so a long table can be filled in parts."""
    dataset = read_cmc_xml(data)
    previous = RESULTS / f"readme_{table}.json"
    results = json.loads(previous.read_text()) if previous.exists() else []
    for flags in rows_for(table):
        if only is not None and only not in flags:
            continue
        results = [r for r in results if r["flags"] != flags]
        options = parse(flags)
        decoders = options.pop("decode").split(",")
        make_model = _make_model(options["model"], options["encoder"], options["loss"], options["weight_decay"],
                                 options["seed"], options["penalty"], options["head_option"], options["nonempty"],
                                 options["calibrate"], options["ensemble"], options["balance"],
                                 options["encoder_option"])
        start = time.perf_counter()
        result = cross_validate(dataset, make_model, decoders, 5, options["seed"])
        command = "comorbid cv " + shlex.join([str(data.name), *flags])
        results.append({"command": command, "flags": flags, "wall_s": time.perf_counter() - start, **result})
        order = [shlex.join(f) for f in rows_for(table)]
        results.sort(key=lambda r: order.index(shlex.join(r["flags"])) if shlex.join(r["flags"]) in order else len(order))
        print(f"{command}: {time.perf_counter() - start:.0f} s", flush=True)
        write(table, results)


def write(table: str, results: list[dict]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"readme_{table}.json").write_text(json.dumps(results, indent=1))
    lines = [f"| flags | decoder | {' | '.join(REPORTED_METRICS)} | train s (5 folds) |",
             "|---|---|" + "---:|" * (len(REPORTED_METRICS) + 1)]
    for result in results:
        flags = " ".join(f for f in result["flags"] if f != "--decode" and "," not in f and f not in
                         ("hamming", "subset", "instance-f1")) or "(defaults)"
        for decoder, metrics in result["metrics"].items():
            cells = [f"{metrics[m]:.3f} ± {result['std'][decoder][m]:.3f}" for m in REPORTED_METRICS]
            lines.append(f"| `{flags}` | {decoder} | {' | '.join(cells)} | {sum(result['train_s']):.0f} |")
    (RESULTS / f"readme_{table}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=["models", "losses", "options"])
    parser.add_argument("--data", type=Path, default=None, help="the CMC 2007 training XML")
    parser.add_argument("--only", default=None, help="run only the rows with this flag value (e.g. a model name)")
    args = parser.parse_args()
    data = args.data or (data_root() or Path("../shared/data")) / "cmc2007" / "2007ChallengeTrainData.xml"
    run(args.table, data, args.only)


if __name__ == "__main__":
    main()
