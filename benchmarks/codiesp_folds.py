"""Folds of ``comorbid cv`` one at a time: train on fold K's training rows, score its test rows.

    python -m benchmarks.codiesp_folds DATA --fold K [--folds 5] [--seed 0] [--model chain]
        [--decode hamming,instance-f1] [--head-option descriptions=false] [--json OUT.json]

The folds are those of ``comorbid cv DATA --folds 5 --seed 0`` (:func:`comorbid.data.splits.kfold_indices`
on the labels only) and each fold is scored as :func:`comorbid.evaluation.cross_validate` scores
it (decoder metrics, the ranking metrics of the marginals, rare-code metrics), so the folds run
as separate processes (on a loaded machine, or several at once) add up to the same table; the
mean over the K folds' JSON files is what ``comorbid cv`` reports.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from comorbid.spec import parse_options
from benchmarks.report import emit_json
from comorbid.data import load_dataset
from comorbid.data.splits import kfold_indices
from comorbid.evaluation import evaluate_predictions, ranking_scores, rare_code_scores
from comorbid.model import MultiLabelModel


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--fold", type=int, required=True, help="1..folds")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="chain")
    parser.add_argument("--decode", default="hamming,instance-f1")
    parser.add_argument("--head-option", action="append", default=[])
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    dataset = load_dataset(args.data)
    decoders = [d.strip() for d in args.decode.split(",") if d.strip()]
    train_rows, test_rows = kfold_indices(dataset.labels, n_folds=args.folds, seed=args.seed)[args.fold - 1]
    start = time.perf_counter()
    model = MultiLabelModel(args.model, head_options=parse_options(args.head_option) or None)
    model.fit(dataset.subset(train_rows), decoders=decoders)
    train_s = time.perf_counter() - start
    test = dataset.subset(test_rows)
    predictions, marginals = model.predict_with_marginals(test, decoders)
    counts = np.asarray(dataset.labels[train_rows].sum(0)).ravel()
    result = {"data": args.data, "fold": args.fold, "folds": args.folds, "seed": args.seed, "model": args.model,
              "head_options": parse_options(args.head_option),
              "descriptions_used": bool(model.head_.options.get("descriptions")), "train_s": round(train_s, 1),
              "metrics": evaluate_predictions(test.labels, predictions, test.label_names),
              "ranking": ranking_scores(test.labels, marginals),
              "rare": {d: rare_code_scores(test.labels, marginals, y, counts) for d, y in predictions.items()}}
    emit_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
