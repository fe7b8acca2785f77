"""Peak memory and time of a chain's Monte Carlo ``marginals()`` at many labels (issue 13).

One measurement per process (peak RSS is per process)::

    PYTHONPATH=src python benchmarks/chain_mc_scale.py --labels 10000 --rows 64 --samples 96 [--before PATH]

``--before PATH``: a copy of the old ``chain.py`` (``git show 86e4a20:src/comorbid/distributions/chain.py``),
which holds ``[n_samples, B, M]`` draws and conditionals at once; without it, the chunked chain.
The interactions are dense ``M x M`` (what exists today), so time is O(n B M^2) either way.

Measured (one shared CPU core, torch 1 thread; peak RSS includes ~1.8 GB of building the dense
10,000 x 10,000 interactions, which hides the marginals' own memory at 96 samples):

    --labels 10000 --rows 64 --samples 96   after: 178.7 s, peak 1852 MB   before: 174.9 s, peak 1852 MB
    --labels 2000  --rows 64 --samples 2000 after: 106.2 s, peak  799 MB   before: 149.5 s, peak 3244 MB
    (RSS before calling marginals(): ~300 MB; the old code's [n, B, M] tensors at M = 10,000,
    n = 2000, B = 64 would be 2 x 5.1 GB.)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--before", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.before:
        spec = importlib.util.spec_from_file_location("chain_before", args.before)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        chain_cls = module.ChainBernoulli
    else:
        from comorbid.distributions.chain import ChainBernoulli as chain_cls
    generator = torch.Generator().manual_seed(0)
    m, b = args.labels, args.rows
    unary = torch.randn(b, m, generator=generator) - 2.0
    interactions = torch.randn(m, m, generator=generator) * 0.01
    dist = chain_cls(unary, interactions, n_mc_samples=args.samples)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    marginals = dist.marginals()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "version": "before" if args.before else "after", "labels": m, "rows": b, "samples": args.samples,
        "seconds": round(seconds, 1), "peak_rss_mb": round(peak / 1024), "rss_before_marginals_mb": round(rss_before / 1024),
        "mean_marginal": round(marginals.mean().item(), 5),
    }))


if __name__ == "__main__":
    main()
