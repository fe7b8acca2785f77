"""The chain's predict path at many labels: Monte Carlo marginals + the default decoder.

Usage (from the repository root)::

    python -m benchmarks.chain_predict --labels 5000 --rows 256
    git show ddc63ba:src/comorbid/distributions/chain.py > /tmp/old_chain.py
    python -m benchmarks.chain_predict --labels 5000 --rows 256 --baseline /tmp/old_chain.py

Builds the ``chain`` head of ``benchmarks.bench_decoders`` (input_dim 32, synthetic ICD-like
labels, 16 parents per label, the head's ``mc_samples="auto"``), then times, on one thread,
``hamming.decode(head(h))`` for ``--rows`` rows (the head's forward, the marginals and the
threshold: what ``predict`` does per batch), ``--repeats`` times on a new distribution each
time; the best run gives rows (notes) per second. ``--baseline FILE``: the same with an other
version of ``comorbid/distributions/chain.py`` (its ``ChainBernoulli``), in the same process,
for an A/B on a shared machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import importlib.util
import resource
import time

import torch

from benchmarks.bench_decoders import build_head
from comorbid.decoders import get_decoder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=5000)
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--decoder", default="hamming")
    parser.add_argument("--baseline", default=None, help="an older chain.py to time beside this one")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    head, h, _ = build_head("chain", args.labels, args.rows, seed=0)
    decoder = get_decoder(args.decoder)
    versions = {"this": None}
    if args.baseline:
        spec = importlib.util.spec_from_file_location("comorbid.distributions._baseline_chain", args.baseline)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        versions["baseline"] = module.ChainBernoulli
    with torch.no_grad():
        template = head(h)
        print(f"M = {args.labels}, B = {args.rows}, Monte Carlo samples {template.n_mc_samples}, "
              f"load average {os.getloadavg()}")
        for name, cls in versions.items():
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                dist = head(h) if cls is None else cls(template.unary_logits, template.interactions, template.order,
                                                       parents=template.parents, n_mc_samples=template.n_mc_samples,
                                                       beam_size=template.beam_size)
                decoder.decode(dist)
                times.append(time.perf_counter() - start)
            print(f"{name}: {args.decoder} {', '.join(f'{t:.2f}' for t in times)} s per batch, "
                  f"{args.rows / min(times):.1f} rows/s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
