"""Forward+backward time and peak memory of every loss, beside bce and the naive pairwise versions.

Usage (from the repository root):

    PYTHONPATH=src python benchmarks/bench_losses.py --batch-size 256 --labels 50 1000 10000 --threads 1

Writes a markdown table to ``benchmarks/results/losses.md`` and the raw numbers to
``benchmarks/results/losses.json``.

How it measures:
* Inputs: float32 logits ~ N(0, 1), ``[B, M]``; targets Bernoulli with ``--positives-per-row``
  expected positives per row (at most half the labels), like ICD coding (MIMIC-III: ~16 codes
  of ~9000). Wasserstein uses the default 0/1 cost; hierarchical a tree of fan-out 10 (depth
  ~log10 M, like ICD chapters/blocks/categories/codes).
* Time: one process; every entry is warmed up once, then the entries run round-robin
  ``--repeats`` times (so all see the same machine load) and the median forward+backward wall
  time is reported: ``loss(logits, targets).backward()`` on a fresh leaf tensor, validation of
  the inputs included.
* Memory: one more forward+backward per entry under ``torch.profiler`` with
  ``profile_memory=True``; its memory timeline (``export_memory_timeline``) lists every
  allocation and free of torch's CPU allocator, and the peak of the live total is reported:
  the tensors the loss adds on top of its inputs (temporaries, autograd's saved tensors,
  gradients), exactly, and independent of malloc caching. Not measured: Python objects and
  memory freed back to the allocator but kept by malloc. (``tracemalloc`` does not see torch's
  allocations, CPU torch has no ``max_memory_allocated``, and process RSS carried ~25 MiB of
  lazy-initialisation noise at M=50.) ``tracemalloc`` does not
  see torch's allocations, and CPU torch has no ``max_memory_allocated``.
* Naive pairwise references (``comorbid.testing.losses.naive_*``) build ``[B, M, M]`` tensors;
  they are skipped, with the memory they would need, when that exceeds ``--max-naive-gib``.
  ``torch.nn.MultiLabelMarginLoss`` (built-in: a C++ loop over every (target, label) pair,
  O(M |P|) time per row, O(M) memory) is skipped when its time extrapolated quadratically from
  the previous M (its worst case, dense targets) exceeds ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from comorbid import losses
from comorbid.testing import losses as references

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30
#: Bytes per pair the naive references hold at their peak: the float32 margin and the float32
#: terms (exp or hinge) with its saved copy for backward, plus the bool pair mask.
NAIVE_BYTES_PER_PAIR = 4 * 3 + 1


@dataclass
class Entry:
    name: str
    kind: str  # "fast" | "naive" | "built-in"
    function: object = None
    prepare: object = None  # targets -> what `function` takes as targets (untimed)
    skipped: str | None = None
    times_ms: list = field(default_factory=list)
    peak_mib: float | None = None


def tree_hierarchy(n_labels: int, fan_out: int = 10) -> torch.Tensor:
    """Parent -> child relation of a complete tree: label j's parent is (j - 1) // fan_out."""
    relation = torch.zeros(n_labels, n_labels, dtype=torch.bool)
    children = torch.arange(1, n_labels)
    relation[(children - 1) // fan_out, children] = True
    return relation


def make_inputs(batch_size: int, n_labels: int, positives_per_row: float, seed: int):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch_size, n_labels, generator=generator)
    rate = min(0.5, positives_per_row / n_labels)
    targets = (torch.rand(batch_size, n_labels, generator=generator) < rate).float()
    return logits, targets


def to_margin_format(targets: torch.Tensor) -> torch.Tensor:
    """0/1 targets -> MultiLabelMarginLoss's target indices, padded with -1."""
    order = torch.sort(targets.to(torch.int8), dim=-1, descending=True, stable=True).indices
    counts = targets.sum(-1, dtype=torch.long)
    slots = torch.arange(targets.shape[1])[None, :]
    return torch.where(slots < counts[:, None], order, torch.full_like(order, -1))


def make_entries(names: list[str], n_labels: int) -> list[Entry]:
    entries = []
    for name in names:
        if name.startswith("naive_"):
            entries.append(Entry(name, "naive", getattr(references, name)))
        elif name == "MultiLabelMarginLoss":
            entries.append(Entry(name, "built-in", torch.nn.MultiLabelMarginLoss(), to_margin_format))
        elif name == "hierarchical":
            entries.append(Entry(name, "fast", losses.HierarchicalLoss(tree_hierarchy(n_labels))))
        else:
            entries.append(Entry(name, "fast", losses.get_loss(name)))
    return entries


def naive_gib(batch_size: int, n_labels: int) -> float:
    return batch_size * n_labels * n_labels * NAIVE_BYTES_PER_PAIR / GIB


def forward_backward(entry: Entry, logits: torch.Tensor, targets) -> float:
    leaf = logits.detach().clone().requires_grad_(True)
    start = time.perf_counter()
    value = entry.function(leaf, targets)
    value = value.mean() if value.dim() else value
    value.backward()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------- memory
def peak_tensor_mib(entry: Entry, logits: torch.Tensor, targets) -> float | None:
    """Peak bytes of live tensors allocated during one forward+backward, from torch.profiler's
    memory timeline (every allocation and free of torch's CPU allocator, autograd's saved
    tensors and the backward pass included; the inputs, allocated before, are not)."""
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # export_memory_timeline is deprecated
        path = Path(folder) / "timeline.json"
        activities = [torch.profiler.ProfilerActivity.CPU]
        with torch.profiler.profile(activities=activities, profile_memory=True, record_shapes=True,
                                    with_stack=True) as profiler:
            forward_backward(entry, logits, targets)
        try:
            profiler.export_memory_timeline(str(path), device="cpu")
        except (AttributeError, RuntimeError) as error:  # removed in some future torch
            print(f"  no memory timeline for {entry.name}: {error}", file=sys.stderr)
            return None
        _, sizes = json.loads(path.read_text())
    return max((sum(step) for step in sizes), default=0) / 2**20


# ---------------------------------------------------------------------------------- main
def run(args) -> list[dict]:
    records = []
    previous_builtin_s = None  # (M, seconds) of MultiLabelMarginLoss at the previous M
    for n_labels in args.labels:
        print(f"M = {n_labels}", file=sys.stderr, flush=True)
        logits, targets = make_inputs(args.batch_size, n_labels, args.positives_per_row, args.seed)
        entries = make_entries(args.losses, n_labels)
        prepared = {}
        for entry in entries:
            if entry.kind == "naive" and naive_gib(args.batch_size, n_labels) > args.max_naive_gib:
                entry.skipped = f"out of memory (would need {naive_gib(args.batch_size, n_labels):,.0f} GiB)"
            if entry.kind == "built-in" and previous_builtin_s is not None:
                estimate = previous_builtin_s[1] * (n_labels / previous_builtin_s[0]) ** 2
                if estimate > args.max_seconds:
                    entry.skipped = f"too slow (~{estimate:,.0f} s per call, extrapolated)"
            if entry.skipped:
                continue
            prepared[entry.name] = entry.prepare(targets) if entry.prepare else targets
            warm = forward_backward(entry, logits, prepared[entry.name])  # warm-up, and a first estimate
            print(f"  {entry.name:22s} warm-up {1000 * warm:10.1f} ms", file=sys.stderr, flush=True)
        for _ in range(args.repeats):
            for entry in entries:
                if not entry.skipped:
                    entry.times_ms.append(1000 * forward_backward(entry, logits, prepared[entry.name]))
        for entry in entries:
            if entry.name == "MultiLabelMarginLoss" and entry.times_ms:
                previous_builtin_s = (n_labels, statistics.median(entry.times_ms) / 1000)
            if not entry.skipped and args.memory:
                entry.peak_mib = peak_tensor_mib(entry, logits, prepared[entry.name])
            records.append({
                "loss": entry.name, "kind": entry.kind, "n_labels": n_labels, "batch_size": args.batch_size,
                "time_ms_median": statistics.median(entry.times_ms) if entry.times_ms else None,
                "times_ms": entry.times_ms, "peak_mib": entry.peak_mib, "skipped": entry.skipped,
            })
            done = records[-1]
            print(f"  {entry.name:22s} {done['time_ms_median'] or 0:10.1f} ms  {done['peak_mib'] or 0:9.1f} MiB"
                  f"  {entry.skipped or ''}", file=sys.stderr, flush=True)
    return records


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def markdown(records: list[dict], args, command: str) -> str:
    labels = args.labels
    names = list(dict.fromkeys(r["loss"] for r in records))
    by = {(r["loss"], r["n_labels"]): r for r in records}
    largest = max(labels)
    bce_time = by.get(("bce", largest), {}).get("time_ms_median")
    lines = [
        f"Forward+backward of a batch of B = {args.batch_size} rows, float32 on CPU "
        f"({cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}), "
        f"{args.positives_per_row:g} expected positives per row; median of {args.repeats} round-robin "
        f"repeats; memory is the peak of live tensor bytes during one call (torch.profiler memory "
        f"timeline), inputs excluded.",
        "",
        f"Command: `{command}`",
        "",
        "| loss | kind | " + " | ".join(f"M={m} ms | M={m} MiB" for m in labels) + f" | time / bce at M={largest} |",
        "|---|---|" + "---:|---:|" * len(labels) + "---:|",
    ]
    for name in names:
        cells = []
        kind = ""
        for m in labels:
            record = by.get((name, m))
            if record is None:
                cells += ["", ""]
                continue
            kind = record["kind"]
            if record["skipped"]:
                cells += [record["skipped"], ""]
            else:
                cells.append(f"{record['time_ms_median']:,.1f}")
                cells.append("" if record["peak_mib"] is None else f"{record['peak_mib']:,.0f}")
        big = by.get((name, largest))
        ratio = (f"{big['time_ms_median'] / bce_time:,.1f}x"
                 if big and big["time_ms_median"] and bce_time else "")
        lines.append(f"| {name} | {kind} | " + " | ".join(cells) + f" | {ratio} |")
    if bce_time:
        lines += ["", f"Targets at M={largest} (same run):"]
        for name, limit in (("bp_mll", 3), ("lsep", 3), ("zlpr", 3), ("pairwise_hinge", 20)):
            record = by.get((name, largest))
            if record and record["time_ms_median"]:
                ratio = record["time_ms_median"] / bce_time
                lines.append(f"- {name}: {ratio:.2f}x bce (target <= {limit}x): {'met' if ratio <= limit else 'NOT met'}")
    return "\n".join(lines) + "\n"


DEFAULT_LOSSES = list(losses.LOSSES) + ["naive_bp_mll", "naive_lsep", "naive_pairwise_hinge", "MultiLabelMarginLoss"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--labels", type=int, nargs="+", default=[50, 1000, 10000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--losses", nargs="+", default=DEFAULT_LOSSES,
                        help="registry names, naive_* references, or MultiLabelMarginLoss")
    parser.add_argument("--positives-per-row", type=float, default=20.0)
    parser.add_argument("--max-naive-gib", type=float, default=8.0)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="skip the built-in beyond this per call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's). On a shared machine use 1: an OpenMP "
                             "parallel region waits for every thread, so one busy core adds a "
                             "scheduler time slice (~8 ms) to each op")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the memory profiles")
    parser.add_argument("--out-md", type=Path, default=ROOT / "benchmarks/results/losses.md")
    parser.add_argument("--out-json", type=Path, default=ROOT / "benchmarks/results/losses.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "PYTHONPATH=src python benchmarks/bench_losses.py " + " ".join(sys.argv[1:] if argv is None else argv)
    records = run(args)
    args.out_md.parent.mkdir(parents=True, exist_ok=True)
    table = markdown(records, args, command.strip())
    args.out_md.write_text(table)
    args.out_json.write_text(json.dumps({"command": command.strip(), "torch": torch.__version__,
                                         "threads": torch.get_num_threads(), "cpu": cpu_name(),
                                         "records": records}, indent=1))
    print(table)


if __name__ == "__main__":
    main()
