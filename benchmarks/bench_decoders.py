"""Decoder throughput (rows per second) as the number of labels M grows.

Usage (from the repository root; ``make bench`` runs it with the defaults)::

    python -m benchmarks.bench_decoders
    python -m benchmarks.bench_decoders --labels 10 50 --heads independent --decoders hamming instance-f1

Every decoder of ``comorbid.decoders.DECODERS`` (those that need an argument get the one in
``DEFAULT_ARGUMENTS``) is timed on the distributions of every head of ``comorbid.heads.HEADS``,
so decoders and models added on other branches are measured without editing this file.

How it measures:
* A head is built with ``input_dim`` 32 and M labels, ``prepare``d on 2,000 synthetic label
  sets with about 5 labels per row (rare labels, as in ICD coding), and its weight matrices
  drawn from N(0, 1/32); inputs h ~ N(0, 1). The head is built once (untimed); the
  distribution of a batch is built by the head's forward pass inside each timed run (a new distribution each time, as in
  prediction, so Monte Carlo estimates cached per distribution are recomputed: before
  2026-12-06 the distribution was built once and later runs reused a chain's cached
  marginals); ``decode(head(h))`` is timed: median of at least 3 runs (more for fast cells), batch size chosen so one run takes
  about a second (at most 256 rows).
* Each (head, decoder, M) cell runs in a forked child with a time limit (``--cell-seconds``)
  and an address-space limit (``--memory-gib``), so an O(M^3) decoder at M = 10,000 fails
  fast instead of exhausting the machine; after a failure the larger M are skipped.
* Shortlist rows: for the independent distribution at M >= 1000, each decoder also runs on the
  top-L labels by marginal (``--shortlist``, default 128) and the result is scattered back.
  Exact for hamming, subset and top-k (k <= L) whenever fewer than L labels have marginal
  above 1/2; for instance-F1 it ignores the labels outside the shortlist (their probability
  mass still shifts the size distribution): an approximation. The ``instance-f1`` decoder now
  shortlists by itself beyond 128 labels, counting every label in |y| (``shortlist_gfm``), so
  its plain rows are the ones to read.
* Peak memory: the cell's process's peak resident set (``ru_maxrss``, MiB), which includes the
  imports and the distribution (a bare process with torch: about 300 MiB).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.isolation import run_isolated
from comorbid.decoders import DECODERS, get_decoder
from comorbid.distributions.independent import IndependentBernoulli
from comorbid.heads import HEADS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: Arguments for decoders that cannot be built from their bare name, or whose default needs more
#: than synthetic labels (mbr's default ICD tree cost needs ICD codes as label names).
DEFAULT_ARGUMENTS = {"top-k": "top-k=5", "mbr": "mbr=jaccard"}
INPUT_DIM = 32
POSITIVES_PER_ROW = 5.0
MAX_BATCH = 256


def decoder_specs(names: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Specs of the registered decoders that can be built, and why the others cannot."""
    specs, skipped = [], {}
    for name in DECODERS:
        if names and name not in names:
            continue
        spec = DEFAULT_ARGUMENTS.get(name, name)
        try:
            get_decoder(spec)
        except (ValueError, TypeError) as error:
            skipped[name] = f"cannot be built without an argument ({error})"
            continue
        specs.append(spec)
    return specs, skipped


def synthetic_labels(n_rows: int, n_labels: int, seed: int) -> np.ndarray:
    """``[n_rows, n_labels]`` 0/1 with Zipf-like label frequencies, ~5 labels per row."""
    rng = np.random.default_rng(seed)
    frequency = 1.0 / np.arange(1, n_labels + 1)
    frequency *= min(POSITIVES_PER_ROW, n_labels / 2) / frequency.sum()
    return (rng.random((n_rows, n_labels)) < np.minimum(frequency, 0.9)).astype(np.int8)


def build_distribution(head_name: str, n_labels: int, n_rows: int, seed: int):
    """One head's distribution of ``n_rows`` random inputs, and the synthetic training labels."""
    head, h, labels = build_head(head_name, n_labels, n_rows, seed)
    with torch.no_grad():
        return head(h), labels


def build_head(head_name: str, n_labels: int, n_rows: int, seed: int):
    """A prepared head with random weights, ``n_rows`` random inputs ``[B, d]`` and the labels."""
    torch.manual_seed(seed)
    head = HEADS[head_name](INPUT_DIM, n_labels)
    labels = synthetic_labels(2000, n_labels, seed)
    head.prepare(labels, [f"L{j}" for j in range(n_labels)])
    with torch.no_grad():
        for parameter in head.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, INPUT_DIM ** -0.5)
    head.eval()
    return head, torch.randn(n_rows, INPUT_DIM), labels


def ready_decoder(spec: str, dist, labels: np.ndarray):
    decoder = get_decoder(spec)
    names = [f"L{j}" for j in range(dist.event_shape[0])]
    if hasattr(decoder, "bind"):
        decoder = decoder.bind(names) or decoder
    if getattr(decoder, "needs_fitting", False):
        # held-out marginals and labels for decoders tuned on them (thresholds)
        decoder.fit(dist.marginals().detach().numpy(), dist.sample().numpy().astype(np.int8))
    return decoder


def shortlisted(decoder, dist: IndependentBernoulli, size: int) -> torch.Tensor:
    """``decoder`` on the ``size`` labels of highest marginal of each row, scattered back."""
    top = dist.logits.topk(min(size, dist.logits.shape[1]), dim=1).indices  # [B, L]
    chosen = decoder.decode(IndependentBernoulli(dist.logits.gather(1, top)))
    out = torch.zeros(dist.logits.shape, dtype=chosen.dtype)
    return out.scatter_(1, top, chosen)


def time_cell(head_name: str, spec: str, n_labels: int, shortlist: int | None, seed: int) -> dict[str, Any]:
    """Rows per second of one decoder on one head's distribution (runs in the child)."""
    torch.set_num_threads(1)

    def batch(n_rows: int):
        head, h, labels = build_head(head_name, n_labels, n_rows, seed)
        decoder = ready_decoder(spec, head(h), labels)
        if shortlist:
            return lambda: shortlisted(decoder, head(h), shortlist)
        # a new distribution every run, as in prediction: Monte Carlo results are cached per
        # distribution, so decoding one distribution again would not recompute them
        return lambda: decoder.decode(head(h))

    with torch.no_grad():
        run = batch(1)
        start = time.perf_counter()
        run()
        single = time.perf_counter() - start
        n_rows = int(max(1, min(MAX_BATCH, 1.0 / max(single, 1e-6))))
        run = batch(n_rows)
        run()  # warm-up
        times = []
        while len(times) < 3 or (sum(times) < 0.2 and len(times) < 100):  # fast cells: more runs
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"rows_per_s": n_rows / seconds, "batch": n_rows, "seconds": seconds, "peak_rss_mib": peak}


def run(args) -> list[dict[str, Any]]:
    specs, skipped = decoder_specs(args.decoders)
    heads = [h for h in HEADS if not args.heads or h in args.heads]
    records = []
    for name, reason in skipped.items():
        records.append({"head": None, "decoder": name, "n_labels": None, "shortlist": None, "error": reason})
    for head in heads:
        for spec in specs:
            variants = [None] + ([args.shortlist] if head == "independent" else [])
            for shortlist in variants:
                failure = None
                previous = None  # (M, seconds per row) of the last cell that ran
                for n_labels in args.labels:
                    record = {"head": head, "decoder": spec, "n_labels": n_labels, "shortlist": shortlist}
                    if shortlist and n_labels < args.shortlist_from:
                        continue
                    # cost grows at least linearly in M: skip what cannot fit in the time limit
                    if previous and previous[1] * n_labels / previous[0] > args.cell_seconds / 4:
                        failure = failure or (f"~{previous[1] * n_labels / previous[0]:,.0f} s per row "
                                              f"extrapolated from M={previous[0]}")
                    if failure:
                        record["error"] = f"skipped ({failure})"
                    else:
                        try:
                            record.update(run_isolated(lambda: time_cell(head, spec, n_labels, shortlist, args.seed),
                                                       args.cell_seconds, args.memory_gib))
                        except RuntimeError as error:
                            record["error"] = str(error)
                            failure = f"M={n_labels}: {error}"
                        else:
                            previous = (n_labels, record["seconds"] / record["batch"])
                    records.append(record)
                    label = f"{head:12s} {spec:14s} M={n_labels:<6d} " + (f"L={shortlist} " if shortlist else "")
                    print(label + (f"{record['rows_per_s']:12,.0f} rows/s" if "rows_per_s" in record
                                   else record.get("error", "")), file=sys.stderr, flush=True)
    return records


def markdown(records: list[dict[str, Any]], args, command: str) -> str:
    labels = args.labels
    lines = [
        "# Decoder throughput",
        "",
        f"Rows per second of `decode(dist)` (median of at least 3 runs, batches of up to {MAX_BATCH} rows, one thread, "
        f"torch {torch.__version__}) for every registered decoder on every head's distribution, "
        f"input_dim {INPUT_DIM}, about {POSITIVES_PER_ROW:g} positive labels per row; the machine was shared "
        "with other work, so the numbers are lower bounds. A cell runs under a "
        f"{args.cell_seconds:g} s and {args.memory_gib:g} GiB limit; after a failure the larger M are skipped. "
        f"Shortlist rows (`L={args.shortlist}`): the decoder on the top-{args.shortlist} labels by marginal "
        "(independent distribution only; see `benchmarks/bench_decoders.py` for when that is exact). "
        "In parentheses, where measured: the cell's peak resident memory (process included).",
        "",
        f"Command: `{command}`",
        "",
        "| head | decoder | " + " | ".join(f"M={m}" for m in labels) + " |",
        "|---|---|" + "---:|" * len(labels),
    ]
    keys = list(dict.fromkeys((r["head"], r["decoder"], r["shortlist"]) for r in records if r["head"]))
    heads = list(dict.fromkeys(head for head, _, _ in keys))
    keys.sort(key=lambda key: heads.index(key[0]))  # rows of a --merge run join their head's rows
    by = {(r["head"], r["decoder"], r["shortlist"], r["n_labels"]): r for r in records if r["head"]}
    for head, decoder, shortlist in keys:
        cells = []
        for m in labels:
            record = by.get((head, decoder, shortlist, m))
            if record is None:
                cells.append("")
            elif "rows_per_s" in record:
                rate = record["rows_per_s"]
                cells.append(f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}")
                if "peak_rss_mib" in record:
                    cells[-1] += f" ({record['peak_rss_mib']:,.0f} MiB)"
            else:
                cells.append(record["error"])
        name = f"{decoder} (shortlist L={shortlist})" if shortlist else decoder
        lines.append(f"| {head} | {name} | " + " | ".join(cells) + " |")
    skipped = [r for r in records if r["head"] is None]
    if skipped:
        lines += ["", "Not measured:"] + [f"- {r['decoder']}: {r['error']}" for r in skipped]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 50, 1000, 10000])
    parser.add_argument("--heads", nargs="+", default=None, help="default: every head in comorbid.heads.HEADS")
    parser.add_argument("--decoders", nargs="+", default=None, help="default: every decoder in the registry")
    parser.add_argument("--shortlist", type=int, default=128)
    parser.add_argument("--shortlist-from", type=int, default=1000, help="smallest M that gets a shortlist row")
    parser.add_argument("--cell-seconds", type=float, default=20.0)
    parser.add_argument("--memory-gib", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--merge", action="store_true",
                        help="replace only the measured decoders' rows of an earlier decoders.json in --out")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    command = "python -m benchmarks.bench_decoders " + " ".join(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    records = run(args)
    earlier = args.out / "decoders.json"
    if args.merge and earlier.is_file():
        previous = json.loads(earlier.read_text())
        remeasured = set(args.decoders or DECODERS)
        records = [r for r in previous["records"] if r["decoder"].split("=")[0] not in remeasured] + records
        command = f"{previous['command']}; then {command.strip()}"
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(records, args, command.strip())
    (args.out / "decoders.md").write_text(table)
    (args.out / "decoders.json").write_text(json.dumps({
        "command": command.strip(), "torch": torch.__version__, "threads": 1, "input_dim": INPUT_DIM,
        "cell_seconds": args.cell_seconds, "memory_gib": args.memory_gib, "shortlist": args.shortlist,
        "wall_s": time.perf_counter() - start, "records": records}, indent=1) + "\n")
    print(table)
    print(f"decoders: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
