"""Load test of `comorbid serve`: single-note requests from concurrent clients, on the loopback.

Usage (from the repository root; needs the `serve` and `test` extras: fastapi, uvicorn, httpx):

    PYTHONPATH=src python benchmarks/bench_serve.py [--model-dir DIR] [--requests 2000] [--clients 16]

Without ``--model-dir`` it first trains the default model (chain head, clinical encoder) on CMC
2007 (``--data``), as ``comorbid train DATA --out DIR --decode none`` would: a few minutes.

How it measures:
* The server is the real CLI, ``python -m comorbid serve MODEL_DIR --host 127.0.0.1 --port P
  --workers W`` (one run per ``--workers`` value), in its own processes (default batching:
  ``--max-batch-notes 64 --max-wait-ms 5``; one torch thread per worker); the clients
  run in this process, on the same machine, so they compete with the server for the cores.
* Each of ``--clients`` asyncio tasks (one shared ``httpx.AsyncClient``) sends one note per
  request, ``decode: instance-f1``, ``scores_top: 20``, the notes of the data set in turn, and
  waits for the answer before its next request, until ``--requests`` requests have been sent
  or ``--max-seconds`` have passed (bounded in count and time). 20 warm-up requests first,
  not counted.
* Latency: from sending a request to having read its whole answer. notes/s: requests answered
  with 200 divided by the wall time of the load phase. Errors: any other status or exception.
* The batching the server did comes from its ``GET /healthz`` counters; the 1-minute load
  average (``os.getloadavg``) before and after is recorded, since the machine may be shared.
* Server CPU per note: the CPU time (user + system, from /proc) the server's processes used
  during the load phase, divided by the notes answered: unlike notes/s, it hardly depends on
  what else runs on the machine, so it compares versions of the server on a shared machine.

Writes ``benchmarks/results/serve.md`` and ``benchmarks/results/serve.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cmc2007" / "2007ChallengeTrainData.xml"


def train_default_model(data: Path, out: Path) -> float:
    from comorbid.data import load_dataset
    from comorbid.model import MultiLabelModel

    start = time.perf_counter()
    MultiLabelModel().fit(load_dataset(str(data))).save(out)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the server did not answer in {seconds:.0f} s")


async def load(url: str, notes: list[str], requests: int, clients: int, max_seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    sent = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        for i in range(20):  # warm-up
            (await http.post("/v1/code", json={"notes": [{"text": notes[i % len(notes)]}]})).raise_for_status()
        before = (await http.get("/healthz")).json()
        start = time.perf_counter()
        stop_at = start + max_seconds

        async def client() -> None:
            nonlocal sent
            while sent < requests and time.perf_counter() < stop_at:
                i, sent = sent, sent + 1
                payload = {"notes": [{"id": str(i), "text": notes[i % len(notes)]}], "decode": "instance-f1",
                           "scores_top": 20}
                began = time.perf_counter()
                try:
                    response = await http.post("/v1/code", json=payload)
                    if response.status_code != 200:
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                        continue
                    response.json()
                except (httpx.HTTPError, ValueError) as error:
                    errors.append(f"{type(error).__name__}: {error}")
                    continue
                latencies.append(time.perf_counter() - began)

        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - start
        after = (await http.get("/healthz")).json()
    batches = after["batches"] - before["batches"]
    return {"sent": sent, "ok": len(latencies), "errors": len(errors), "error_samples": errors[:5],
            "wall_s": round(wall, 3), "latencies": latencies, "batches": batches,
            "mean_batch_notes": round((after["notes"] - before["notes"]) / max(1, batches), 2),
            "largest_batch": after["largest_batch"]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]  # nearest rank


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process ``pid`` and its children alive now (the
    uvicorn workers), from /proc: what the server spent, whatever else runs on the machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, parents = 0.0, {pid}
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    for process, (parent, _) in stats.items():
        if parent == pid:
            parents.add(process)
    for process in parents:
        if process in stats:
            total += stats[process][1] / ticks
    return total


def run_once(model_dir: Path, notes: list[str], workers: int, args) -> dict:
    """Start `comorbid serve` with ``workers`` processes, load it, stop it: one row of the table."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    server = subprocess.Popen([sys.executable, "-m", "comorbid", "serve", str(model_dir), "--host", "127.0.0.1",
                               "--port", str(port), "--workers", str(workers)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(url, server)
        card = httpx.get(f"{url}/v1/model", timeout=10).json()["card"]
        load_before = os.getloadavg()[0]
        cpu_before = tree_cpu_seconds(server.pid)
        result = asyncio.run(load(url, notes, args.requests, args.clients, args.max_seconds))
        cpu_after = tree_cpu_seconds(server.pid)
        load_after = os.getloadavg()[0]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    latencies = result.pop("latencies")
    return {
        "workers": workers, "card": card, **result,
        "notes_per_s": round(result["ok"] / result["wall_s"], 1) if result["wall_s"] else None,
        "latency_ms": {name: round(1000 * percentile(latencies, q), 1) for name, q in
                       (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))} if latencies else {},
        "latency_mean_ms": round(1000 * statistics.fmean(latencies), 1) if latencies else None,
        "load_avg_1min_before": round(load_before, 2), "load_avg_1min_after": round(load_after, 2),
        # includes the 20 warm-up requests and the two /healthz reads of load()
        "server_cpu_ms_per_note": round(1000 * (cpu_after - cpu_before) / max(1, result["ok"]), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="A saved model (default: train one on --data).")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CMC 2007 training XML: notes (and model).")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="`serve --workers`: one run per value.")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="Stop sending after this long.")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)

    from comorbid.data import load_dataset

    notes = list(load_dataset(str(args.data)).inputs)
    trained_s = None
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = args.model_dir
        if model_dir is None:
            model_dir = Path(scratch) / "model"
            print(f"training the default model on {args.data} ...", file=sys.stderr)
            trained_s = round(train_default_model(args.data, model_dir), 1)
        runs = [run_once(model_dir, notes, workers, args) for workers in args.workers]
    card = runs[0].pop("card")
    for run in runs[1:]:
        run.pop("card")
    summary = {
        "command": "PYTHONPATH=src python benchmarks/bench_serve.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": {"model": card["model"], "encoder": card["encoder"], "labels": card["labels"],
                  "trained_here_s": trained_s},
        "requests": args.requests, "clients": args.clients, "notes_per_request": 1,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.json").write_text(json.dumps(summary, indent=1) + "\n")
    for r in runs:
        if r["workers"] > 1:  # /healthz counts one worker's batches, whichever answered: meaningless
            r["batches"] = r["mean_batch_notes"] = r["largest_batch"] = None
    rows = "".join(
        f"| {r['workers']} | {r['sent']} | {r['ok']} | {r['errors']} | {r['wall_s']} | {r['notes_per_s']} "
        f"| {r['latency_ms'].get('p50')} | {r['latency_ms'].get('p90')} | {r['latency_ms'].get('p99')} "
        f"| {r['latency_ms'].get('max')} | {r['batches'] or '-'} | {r['mean_batch_notes'] or '-'} "
        f"| {r['largest_batch'] or '-'} | {r['server_cpu_ms_per_note']} "
        f"| {r['load_avg_1min_before']} / {r['load_avg_1min_after']} |\n" for r in runs)
    (args.out / "serve.md").write_text(
        "# `comorbid serve` load test\n\n"
        f"`{summary['command']}` (benchmarks/bench_serve.py says how it measures).\n\n"
        f"Model: {card['model']} head, {card['encoder']} encoder, {card['labels']} codes (CMC 2007 training set). "
        f"{args.clients} concurrent clients, one note per request, on 127.0.0.1; server and clients on the same "
        f"{os.cpu_count()}-core machine, shared with other jobs (the 1-minute load average before / after each "
        "run is in the last column).\n\n"
        "| workers | requests sent | answered 200 | errors | wall (s) | notes/s | p50 (ms) | p90 (ms) | p99 (ms) "
        "| max (ms) | batches | mean notes/batch | largest batch | server CPU ms/note | load average |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n" + rows +
        "\nTarget: >= 100 notes/s and p99 <= 500 ms, 0 errors. Where the time goes: docs/serve.md, \"Load test\".\n")
    for r in runs:
        print(json.dumps({k: r[k] for k in ("workers", "sent", "ok", "errors", "notes_per_s", "latency_ms",
                                            "server_cpu_ms_per_note", "load_avg_1min_before")}))
    return 0 if all(r["errors"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
