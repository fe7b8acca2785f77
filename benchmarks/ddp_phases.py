"""Time the phases of one default training in this process or rank: imports, reading, the fit, the training loop.

Usage: ``python benchmarks/ddp_phases.py DATA THREADS`` (one process), or
``torchrun --standalone --nproc-per-node 2 benchmarks/ddp_phases.py DATA THREADS``; prints one JSON
line per rank (docs/distributed.md).
"""

import json
import sys
import time

started = time.perf_counter()
import torch  # noqa: E402

import comorbid.model  # noqa: E402
from comorbid import distributed, training  # noqa: E402
from comorbid.data import load_dataset  # noqa: E402

imported = time.perf_counter()
spent = {}


def timed_fit(*args, **kwargs):
    """comorbid.training.fit with a timer: the training loop alone."""
    start = time.perf_counter()
    history = training.fit(*args, **kwargs)
    spent["loop_s"] = spent.get("loop_s", 0.0) + time.perf_counter() - start
    return history


def main(data: str, threads: int) -> None:
    comorbid.model.fit = timed_fit
    torch.set_num_threads(threads)
    read = time.perf_counter()
    dataset = load_dataset(data)
    fitted = time.perf_counter()
    model = comorbid.model.MultiLabelModel().fit(dataset)
    done = time.perf_counter()
    print(json.dumps({"rank": distributed.rank(), "world": distributed.world_size(), "threads": threads,
                      "import_s": round(imported - started, 1), "read_s": round(fitted - read, 1),
                      "fit_s": round(done - fitted, 1), "loop_s": round(spent["loop_s"], 1),
                      "evaluations": model.history_.get("evaluations")}), flush=True)


if __name__ == "__main__":
    if distributed.launched():
        with distributed.process_group():
            main(sys.argv[1], int(sys.argv[2]))
    else:
        main(sys.argv[1], int(sys.argv[2]))
