"""Seconds and peak memory of a sparse chain head (K parents per label) at many labels (issue 13).

One measurement per process (peak RSS is per process)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/chain_parents_scale.py --stage marginals \
        --labels 10000 --parents 16

Stages: ``build`` (``ChainHead(...).prepare(Y)`` from a random CSR label matrix of ``--notes``
rows with ~``--per-row`` labels each: dependence order + parents from the sparse ``Y^T Y``),
``nll`` (teacher-forced NLL + backward on ``--train-batch`` rows), ``marginals``
(``marginals()`` of ``--rows`` rows with ``--samples`` Monte Carlo samples; the head is built
first, with random parent weights). Peak RSS includes the build's (a ``marginals`` or ``nll``
run reports ``rss_after_build_mb`` too). Label frequencies follow a Zipf law (exponent 1), as
ICD codes roughly do.

Measured (one shared CPU core of 2, torch 1 thread, defaults: N = 50,000 notes of ~9.4 codes,
d = 256, K = 16, B = 256 for the NLL, 64 rows x 2,000 samples for the marginals; RSS is ~250 MB
after importing torch and drawing the labels)::

    --stage build     --labels 10000   2.9 s, peak  501 MB  (mean 15.6 parents; head 10.4 MB)
    --stage nll       --labels 10000   0.62 s, peak 519 MB  (forward + backward, B = 256)
    --stage marginals --labels 10000  91.2 s, peak  762 MB
    --stage build     --labels 2194    1.2 s, peak  376 MB  (mean 15.9 parents; head 2.3 MB)
    --stage nll       --labels 2194    0.12 s, peak 377 MB
    --stage marginals --labels 2194   10.9 s, peak  763 MB  (the 256 MB Monte Carlo chunk)

The dense chain (``--parents dense``) holds 400 MB of weights at M = 10,000 and its marginals
take ~180 s for 96 samples (benchmarks/chain_mc_scale.py), i.e. about an hour for 2,000.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import torch
from scipy import sparse


def random_labels(n_notes: int, n_labels: int, per_row: int, seed: int = 0) -> sparse.csr_matrix:
    """``[N, M]`` CSR 0/1: each note draws ``per_row`` codes (repeats merged) from a Zipf(1)
    distribution over the labels, so a few codes are common and most are rare."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_labels + 1)
    codes = rng.choice(n_labels, size=(n_notes, per_row), p=weights / weights.sum())
    rows = np.repeat(np.arange(n_notes), per_row)
    y = sparse.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, codes.ravel())), shape=(n_notes, n_labels))
    y.data[:] = 1.0  # repeats were summed
    return y


def peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=("build", "nll", "marginals"), required=True)
    parser.add_argument("--labels", type=int, default=10_000)
    parser.add_argument("--parents", default="16", help="an integer K, or 'dense'")
    parser.add_argument("--notes", type=int, default=50_000)
    parser.add_argument("--per-row", type=int, default=10)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--train-batch", type=int, default=256)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from comorbid.heads.chain import ChainHead

    parents = args.parents if args.parents == "dense" else int(args.parents)
    labels = random_labels(args.notes, args.labels, args.per_row)
    result = {"stage": args.stage, "labels": args.labels, "parents": parents, "notes": args.notes,
              "labels_per_note": round(labels.nnz / args.notes, 2), "rss_labels_mb": peak_mb()}
    start = time.perf_counter()
    head = ChainHead(args.features, args.labels, parents=parents)
    head.prepare(labels)
    build_seconds = time.perf_counter() - start
    result.update(build_seconds=round(build_seconds, 2), rss_after_build_mb=peak_mb())
    if head.n_parents is not None:
        real = head.parents < args.labels
        result.update(mean_parents=round(real.sum(1).double().mean().item(), 2),
                      head_parameter_mb=round(sum(p.numel() * p.element_size() for p in head.parameters()) / 2**20, 1))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        head.linear.weight.normal_(0.0, 0.05, generator=generator)
        (head.parent_weights if head.n_parents is not None else head.interactions).normal_(0.0, 0.5, generator=generator)
    if args.stage == "nll":
        rows = np.arange(args.train_batch)
        h = torch.randn(args.train_batch, args.features, generator=generator)
        y = torch.as_tensor(labels[rows].toarray())
        start = time.perf_counter()
        loss = head.nll(h, y)
        loss.backward()
        result.update(nll_seconds=round(time.perf_counter() - start, 2), nll=round(loss.item(), 3))
    elif args.stage == "marginals":
        h = torch.randn(args.rows, args.features, generator=generator)
        with torch.no_grad():
            dist = head(h)
        dist.n_mc_samples = args.samples
        start = time.perf_counter()
        marginals = dist.marginals()
        result.update(marginals_seconds=round(time.perf_counter() - start, 1), samples=args.samples,
                      rows=args.rows, mean_marginal=round(marginals.mean().item(), 5))
    result["peak_rss_mb"] = peak_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
