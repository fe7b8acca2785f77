"""The CMC 2007 tables of the README: every model x decoder, every loss, the training options.

Each row is exactly ``comorbid cv CMC.xml [flags]`` (5 iteratively stratified folds, seed 0):
the same function the CLI calls, with the flags written in the row's ``command`` field of the
JSON. Run from the repository root:

    python -m benchmarks.readme_tables models    # joint models x decoders  -> results/readme_models.{json,md}
    python -m benchmarks.readme_tables losses    # independent head x loss -> results/readme_losses.{json,md}
    python -m benchmarks.readme_tables options   # calibration, bagging, balance, orders, seeds
                                                 #                          -> results/readme_options.{json,md}
    python -m benchmarks.readme_tables readme    # copy the tables into README.md (between its markers)

A long table can be filled in parts: ``--only chain ising`` runs the rows whose flags hold
``chain`` or ``ising`` and keeps the other rows of the earlier run.

The data is read from ``$COMORBID_DATA`` or ``../shared/data`` (``cmc2007/2007ChallengeTrainData.xml``).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import time
from pathlib import Path

from comorbid.model import MultiLabelModel
from comorbid.spec import ModelSpec, parse_options
from comorbid.data import data_root, read_cmc_xml
from comorbid.evaluation import REPORTED_METRICS, cross_validate

RESULTS = Path(__file__).parent / "results"
README = Path(__file__).parent.parent / "README.md"
DATA = "$COMORBID_DATA/cmc2007/2007ChallengeTrainData.xml"
ALL_DECODERS = "hamming,subset,instance-f1,jaccard,top-k=1,micro-f1,macro-f1,mbr"
# The chain ensemble trains 4 chains, and micro-f1 / macro-f1 add 3 held-out trainings of all 4
# per fold: its row is run in two parts (each a `comorbid cv` of its own), so that a part fits in
# the time of one session on the shared machine.
NO_HELD_OUT_STAGE = "hamming,subset,instance-f1,jaccard,top-k=1,mbr"
HELD_OUT_STAGE = "micro-f1,macro-f1"
MODELS = ["independent", "chain", "chain-ensemble", "mixture", "powerset", "ising"]
LOSSES = ["bce", "focal", "asymmetric", "bp_mll", "lsep", "zlpr", "pairwise_hinge", "sigmoid_f1", "soft_jaccard",
          "wasserstein", "hierarchical"]


def rows_for(table: str) -> list[list[str]]:
    """The ``comorbid cv`` flags of every row of a table."""
    if table == "models":
        return [["--model", model, "--decode", decoders] for model in MODELS
                for decoders in ([ALL_DECODERS] if model != "chain-ensemble" else [NO_HELD_OUT_STAGE, HELD_OUT_STAGE])]
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
        ["--encoder-option", 'clinical={"negated": "keep", "uncertain": "keep"}', *decode],
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


def spec_of(options: dict) -> ModelSpec:
    """The model of :func:`parse`'s options, as ``comorbid cv`` builds it from the same flags."""
    head_options = parse_options(options["head_option"])
    if options["loss"] is not None:
        head_options["loss"] = options["loss"]
    train = {key: options[key] for key in ("seed", "weight_decay", "penalty", "balance") if options[key] is not None}
    return ModelSpec(model=options["model"], encoder=options["encoder"], head_options=head_options,
                     encoder_options=parse_options(options["encoder_option"], "--encoder-option"), train=train,
                     nonempty={"auto": "auto", "yes": True, "no": False}[options["nonempty"]],
                     calibrate=options["calibrate"], ensemble=options["ensemble"])


def run(table: str, data: Path, only: list[str] | None = None) -> None:
    """Run the table's rows (those with a flag in ``only``, if given), keeping the rows of an
    earlier run of the same table that are not rerun, so a long table can be filled in parts."""
    dataset = read_cmc_xml(data)
    previous = RESULTS / f"readme_{table}.json"
    results = json.loads(previous.read_text()) if previous.exists() else []
    for flags in rows_for(table):
        if only and not set(only) & set(flags):
            continue
        results = [r for r in results if r["flags"] != flags]
        options = parse(flags)
        decoders = options.pop("decode").split(",")
        spec = spec_of(options)
        make_model = lambda: MultiLabelModel.from_spec(spec)  # noqa: E731
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
    (RESULTS / f"readme_{table}.md").write_text(markdown(results) + "\n")


def _cell(mean: float, std: float, digits: int) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def shown_flags(flags: list[str], hide: tuple[str, ...] = ()) -> str:
    """The row's flags without its decoder list (every decoder has a line of its own)."""
    kept, it = [], iter(flags)
    for flag in it:
        if flag == "--decode":
            next(it)
        elif flag in hide:
            next(it)
        else:
            kept.append(flag)
    return " ".join(kept) or "(defaults)"


def markdown(results: list[dict], hide: tuple[str, ...] = ()) -> str:
    lines = [f"| flags | decoder | {' | '.join(m.replace('_', ' ') for m in REPORTED_METRICS)} | train s (5 folds) |",
             "|---|---|" + "---:|" * (len(REPORTED_METRICS) + 1)]
    for result in results:
        flags = shown_flags(result["flags"], hide)
        for decoder, metrics in result["metrics"].items():
            cells = [_cell(metrics[m], result["std"][decoder][m], 4 if m == "hamming_loss" else 3) for m in REPORTED_METRICS]
            lines.append(f"| `{flags}` | {decoder} | {' | '.join(cells)} | {sum(result['train_s']):.0f} |")
    return "\n".join(lines)


def readme_blocks() -> dict[str, str]:
    """The README's CMC blocks, from the tables' JSON: ``defaults`` (the chain rows of the models
    table, which are the CLI's defaults), ``models``, ``losses`` and ``options``."""
    blocks = {}
    for table in ("models", "losses", "options"):
        path = RESULTS / f"readme_{table}.json"
        if not path.is_file():
            continue
        results = json.loads(path.read_text())
        regenerate = f"Regenerate: `python -m benchmarks.readme_tables {table}`."
        if table == "models":
            defaults = [r for r in results if r["flags"][:2] == ["--model", "chain"]]
            if defaults:
                decode = defaults[0]["flags"][defaults[0]["flags"].index("--decode") + 1]
                blocks["defaults"] = (f"`comorbid cv {DATA} --decode {decode}` (no model flags: the defaults)\n\n"
                                      + markdown(defaults, hide=("--model",)) + "\n\n" + regenerate)
        blocks[table] = (f"Each row: `comorbid cv {DATA} FLAGS --decode DECODERS` (5 folds, seed 0 unless the flags "
                         f"say otherwise; mean ± std over folds; train s: the 5 folds' training time on the "
                         f"shared 2-core machine).\n\n" + markdown(results) + "\n\n" + regenerate)
    return blocks


def update_readme(readme: Path = README) -> list[str]:
    """Replace each block between ``<!-- cmc:NAME:start -->`` and ``<!-- cmc:NAME:end -->``."""
    text, done = readme.read_text(), []
    for name, block in readme_blocks().items():
        start, end = f"<!-- cmc:{name}:start -->", f"<!-- cmc:{name}:end -->"
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
        if pattern.search(text):
            text = pattern.sub(lambda _: f"{start}\n{block}\n{end}", text)
            done.append(name)
    readme.write_text(text)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=["models", "losses", "options", "readme"])
    parser.add_argument("--data", type=Path, default=None, help="the CMC 2007 training XML")
    parser.add_argument("--only", nargs="+", default=None,
                        help="run only the rows with one of these flags or flag values (e.g. a model name)")
    args = parser.parse_args()
    data = args.data or (data_root() or Path("../shared/data")) / "cmc2007" / "2007ChallengeTrainData.xml"
    if args.table == "readme":
        print("README blocks updated:", ", ".join(update_readme()) or "none")
    else:
        run(args.table, data, args.only)


if __name__ == "__main__":
    main()
