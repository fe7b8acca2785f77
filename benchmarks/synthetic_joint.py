"""Joint models on data from a known p(y|x): subset accuracy against the Bayes-optimal value.

Draws a training and a test set from ``comorbid.data.dependent_label_problem`` (a conditional
Bernoulli mixture whose labels depend strongly on each other), trains every joint model, and
scores each model's subset-decoder prediction on the test rows by its *expected* subset
accuracy under the true p(y|x) (exact, no label-sampling noise). Two references, also exact:
the true marginals thresholded at 0.5 (the best any predictor of marginals does on subset
accuracy here) and the true mode (Bayes-optimal).

Run (from the repository root):

    PYTHONPATH=src python benchmarks/synthetic_joint.py --seeds 0 1 2 --out benchmarks/results/synthetic_joint.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from comorbid.data.synthetic import (
    bayes_optimal_subset_accuracy,
    dependent_label_problem,
    expected_subset_accuracy,
    threshold_marginals,
)
from comorbid.heads import HEADS
from comorbid.model import MultiLabelModel
from comorbid.training import TrainConfig

MODELS = ("independent", "chain", "chain-ensemble", "mixture", "powerset", "ising")


def run_seed(seed: int, args) -> dict[str, float]:
    data, true_probs = dependent_label_problem(
        n=args.n_train + args.n_test, n_features=args.n_features, n_labels=args.n_labels, seed=seed,
        strength=args.strength, sharpness=args.sharpness,
    )
    train = data.subset(np.arange(args.n_train))
    test = data.subset(np.arange(args.n_train, len(data)))
    test_probs = true_probs[args.n_train :]
    row = {
        "true marginals > 0.5": expected_subset_accuracy(test_probs, threshold_marginals(test_probs, args.n_labels)),
        "Bayes-optimal (true mode)": bayes_optimal_subset_accuracy(test_probs),
    }
    seconds = {}
    for name in args.models:
        start = time.perf_counter()
        model = MultiLabelModel(
            name, encoder="mlp", encoder_options={"hidden": list(args.hidden), "dropout": 0.0},
            train=TrainConfig(seed=seed, weight_decay=args.weight_decay, max_iterations=args.max_iterations),
            # the true p(y|x) gives the empty set mass; "auto" would condition on a non-empty set
            # whenever a draw has no empty training row (seed 3 of docs/models.md)
            nonempty=False,
        ).fit(train)
        predictions = model.predict(test, ["subset"])["subset"]
        row[name] = expected_subset_accuracy(test_probs, predictions)
        seconds[name] = time.perf_counter() - start
    return row, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=sorted(HEADS))
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--n-features", type=int, default=10)
    parser.add_argument("--n-labels", type=int, default=6)
    parser.add_argument("--strength", type=float, default=4.0)
    parser.add_argument("--sharpness", type=float, default=1.0)
    parser.add_argument("--hidden", type=int, nargs="*", default=[], help="MLP widths (none: a linear head)")
    parser.add_argument("--weight-decay", type=float, default=1e-5)
    parser.add_argument("--max-iterations", type=int, default=300)
    parser.add_argument("--out", help="write the table as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows, times = {}, {}
    for seed in args.seeds:
        rows[seed], times[seed] = run_seed(seed, args)
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[seed].items()), flush=True)
    columns = list(rows[args.seeds[0]])
    print()
    print("| predictor | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean |")
    print("|---|" + "---:|" * (len(args.seeds) + 1))
    for column in columns:
        values = [rows[s][column] for s in args.seeds]
        print(f"| {column} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {np.mean(values):.3f} |")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        payload = {"args": vars(args), "expected_subset_accuracy": rows, "train_predict_s": times}
        Path(args.out).write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
