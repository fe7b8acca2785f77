"""Joint models on data from a known p(y|x): subset accuracy against the Bayes-optimal value.

Draws a training and a test set from a generator that returns the true p(y|x) of every label
set, trains every joint model, and scores each model's predictions on the test rows, for each
decoder asked for, by their *expected* subset accuracy under the true p(y|x) (exact, no
label-sampling noise): ``mean_i p(y = prediction_i | x_i)``. Two references, also exact: the
true marginals thresholded at 0.5 and the true mode (Bayes-optimal). The regret of a predictor
is the Bayes-optimal value minus its own.

Problems (``--problem``):

- ``ring`` (``comorbid.data.dependent_label_problem``): a conditional Bernoulli mixture of
  overlapping label pairs gated by a softmax linear in x.
- ``parity`` (``comorbid.data.parity_label_problem``): soft parity constraints on groups of 3
  labels (an order-3 dependence with no pairwise part) and label tendencies from a random
  tanh network of x (marginals non-linear in x).

Run (from the repository root):

    PYTHONPATH=src python benchmarks/synthetic_joint.py --seeds 0 1 2 --out benchmarks/results/synthetic_joint.json
    PYTHONPATH=src python benchmarks/synthetic_joint.py --problem parity --seeds 0 1 2 --hidden 64 --n-train 20000 \\
        --models independent powerset mixture ising chain --decoders hamming subset \\
        --out benchmarks/results/synthetic_joint_parity.json

(docs/models.md, "Synthetic check", has the tables and what each setting needed.)
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np
import torch

from comorbid.data.synthetic import (
    bayes_optimal_subset_accuracy,
    dependent_label_problem,
    expected_subset_accuracy,
    parity_label_problem,
    threshold_marginals,
)
from comorbid.heads import HEADS
from comorbid.io import write_atomic
from comorbid.model import MultiLabelModel
from comorbid.training import TrainConfig

MODELS = ("independent", "chain", "chain-ensemble", "mixture", "powerset", "ising")
PROBLEMS = {"ring": dependent_label_problem, "parity": parity_label_problem}
THRESHOLDED = "true marginals > 0.5"
BAYES = "Bayes-optimal (true mode)"


def draw(seed: int, args):
    """``(train, test, test_probs)`` for one seed."""
    options = {"n": args.n_train + args.n_test, "n_features": args.n_features, "n_labels": args.n_labels,
               "seed": seed, "strength": args.strength, "sharpness": args.sharpness}
    if args.problem == "parity":
        options["offset"] = args.offset
    data, true_probs = PROBLEMS[args.problem](**options)
    train_rows, test_rows = np.arange(args.n_train), np.arange(args.n_train, len(data))
    return data.subset(train_rows), data.subset(test_rows), true_probs[test_rows]


def model_for(name: str, seed: int, args) -> MultiLabelModel:
    head_options = {"n_components": args.components} if name == "mixture" and args.components else None
    train = {"seed": seed, "weight_decay": args.weight_decay, "max_iterations": args.max_iterations}
    if args.hidden:  # a trainable encoder: Adam with early stopping
        train.update(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate)
    return MultiLabelModel(
        name, encoder="mlp", encoder_options={"hidden": list(args.hidden), "dropout": args.dropout},
        head_options=head_options, train=TrainConfig(**train),
        # the true p(y|x) gives the empty set mass; "auto" would condition on a non-empty set
        # whenever a draw has no empty training row (seed 3 of docs/models.md)
        nonempty=False,
    )


def run_seed(seed: int, args) -> tuple[dict[str, float], dict[str, float]]:
    """Expected subset accuracy of each reference and ``model / decoder``; seconds per model."""
    train, test, test_probs = draw(seed, args)
    row = {
        THRESHOLDED: expected_subset_accuracy(test_probs, threshold_marginals(test_probs, args.n_labels)),
        BAYES: bayes_optimal_subset_accuracy(test_probs),
    }
    seconds = {}
    for name in args.models:
        start = time.perf_counter()
        model = model_for(name, seed, args).fit(train)
        predictions = model.predict(test, args.decoders, seed=seed)
        for decoder, sets in predictions.items():
            row[f"{name} / {decoder}"] = expected_subset_accuracy(test_probs, sets)
        seconds[name] = time.perf_counter() - start
        print(f"  seed {seed} {name}: " + ", ".join(f"{d} {row[f'{name} / {d}']:.4f}" for d in predictions)
              + f" ({seconds[name]:.1f} s)", flush=True)
    return row, seconds


def table(rows: dict[int, dict[str, float]], seeds: list[int]) -> str:
    """Markdown: expected subset accuracy per seed, mean ± sd, and mean regret against Bayes."""
    lines = ["| predictor | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± sd | regret (mean ± sd) |",
             "|---|" + "---:|" * (len(seeds) + 2)]
    regrets = {s: {k: rows[s][BAYES] - v for k, v in rows[s].items()} for s in seeds}
    for column in rows[seeds[0]]:
        values = np.array([rows[s][column] for s in seeds])
        regret = np.array([regrets[s][column] for s in seeds])
        lines.append(f"| {column} | " + " | ".join(f"{v:.3f}" for v in values)
                     + f" | {values.mean():.3f} ± {values.std():.3f} | {regret.mean():+.3f} ± {regret.std():.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=sorted(PROBLEMS), default="ring")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=sorted(HEADS))
    parser.add_argument("--decoders", nargs="+", default=["subset"],
                        help="decoder specs to score (e.g. hamming subset)")
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--n-features", type=int, default=10)
    parser.add_argument("--n-labels", type=int, default=6)
    parser.add_argument("--strength", type=float, default=None, help="default: the generator's (ring 4, parity 6)")
    parser.add_argument("--sharpness", type=float, default=None, help="default: the generator's (ring 1, parity 1.5)")
    parser.add_argument("--offset", type=float, default=2.0, help="parity only: the tendencies' shift")
    parser.add_argument("--hidden", type=int, nargs="*", default=[], help="MLP widths (none: a linear head)")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--components", type=int, default=0, help="mixture components (0: the head's default)")
    parser.add_argument("--weight-decay", type=float, default=1e-5)
    parser.add_argument("--max-iterations", type=int, default=300, help="L-BFGS (linear head)")
    parser.add_argument("--epochs", type=int, default=100, help="Adam (with --hidden), early stopping on 10%%")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--out", help="write the table as JSON here, and as Markdown next to it (.md)")
    args = parser.parse_args()
    defaults = {"ring": (4.0, 1.0), "parity": (6.0, 1.5)}[args.problem]
    args.strength = defaults[0] if args.strength is None else args.strength
    args.sharpness = defaults[1] if args.sharpness is None else args.sharpness
    torch.set_num_threads(1)

    rows, times = {}, {}
    start = time.perf_counter()
    for seed in args.seeds:
        rows[seed], times[seed] = run_seed(seed, args)
        markdown = write(args, rows, times, time.perf_counter() - start)  # every seed: a long run keeps what it has
    print()
    print(markdown)


def write(args, rows: dict, times: dict, wall: float) -> str:
    """The table of the seeds done so far; to ``--out`` (JSON, and Markdown beside it) if given."""
    seeds = list(rows)
    markdown = table(rows, seeds)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"seeds {seeds}: wall {wall:.0f} s, peak RSS {peak_mib:.0f} MiB", flush=True)
    if args.out:
        payload = {"args": vars(args), "expected_subset_accuracy": rows, "train_predict_s": times,
                   "wall_s": wall, "peak_rss_mib": peak_mib}
        write_atomic(args.out, json.dumps(payload, indent=1))
        if args.out.endswith(".json"):
            command = "PYTHONPATH=src python benchmarks/synthetic_joint.py " + " ".join(sys.argv[1:])
            write_atomic(args.out[:-5] + ".md", (
                f"# Synthetic joint models: {args.problem}\n\n```\n{command}\n```\n\n"
                f"Expected subset accuracy on {args.n_test} test rows per seed (seeds {seeds}), exact under the "
                f"true p(y|x); regret = Bayes-optimal minus the predictor's. Wall {wall:.0f} s, peak RSS "
                f"{peak_mib:.0f} MiB.\n\n{markdown}\n"))
    return markdown


if __name__ == "__main__":
    main()
