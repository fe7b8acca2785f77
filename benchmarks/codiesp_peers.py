"""The peer a coder would try first on CodiEsp, on the folds `comorbid cv` uses.

scikit-learn TF-IDF (word 1-2-grams, sublinear tf, min_df 2) + one-vs-rest LinearSVC, codes
ranked by decision value, a code predicted when its decision value is > 0 (its default). Same
iteratively stratified folds as ``comorbid cv DATA --folds K --seed S`` (they depend only on
the labels, K and S), same metric code: the set metrics of ``comorbid.evaluation`` and the
ranking metrics (precision@k, recall@k, MAP) with codes absent from a training fold counted as
misses, as ``comorbid cv`` counts them.

    python -m benchmarks.codiesp_peers DATA.jsonl [--folds 5] [--seed 0] [--json OUT.json]

CodiEsp (CLEF eHealth 2020, Miranda-Escalada et al.; CC BY 4.0): join ``train.jsonl`` and
``dev.jsonl`` of ``$COMORBID_DATA/codiesp`` into one file first.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from benchmarks.report import emit_json
from comorbid.data import load_dataset
from comorbid.data.splits import kfold_indices
from comorbid.evaluation import RANKING_METRICS, REPORTED_METRICS, evaluate_predictions, ranking_scores


def svc_fold(train, test):
    """Decision values ``[n_test, M]`` of one-vs-rest LinearSVC on TF-IDF (codes without a
    positive training row get -inf: never ranked, never predicted)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vectorizer.fit_transform(train.inputs)
    seen = np.flatnonzero(train.labels.sum(0) > 0)
    classifier = OneVsRestClassifier(LinearSVC())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # bool, not int8: scikit-learn's LabelBinarizer scrambles the columns of an int8
        # indicator matrix with more than 128 columns (found by benchmarks/bench_scale.py)
        classifier.fit(x_train, train.labels[:, seen].astype(bool))
    scores = np.full((len(test), train.labels.shape[1]), -np.inf)
    scores[:, seen] = classifier.decision_function(vectorizer.transform(test.inputs))
    return scores


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    data = load_dataset(args.data)
    per_fold, ranked, seconds = [], [], []
    for train_rows, test_rows in kfold_indices(data.labels, args.folds, args.seed):
        train, test = data.subset(train_rows), data.subset(test_rows)
        start = time.perf_counter()
        scores = svc_fold(train, test)
        seconds.append(time.perf_counter() - start)
        per_fold.append(evaluate_predictions(test.labels, {"svc": (scores > 0).astype(np.int8)})["svc"])
        # rank by decision value; -inf (unseen codes) ranks last, like a code the model lacks
        finite = np.where(np.isfinite(scores), scores, -1e9)
        ranked.append(ranking_scores(test.labels, finite))
    result = {
        "method": "tfidf + one-vs-rest LinearSVC (scikit-learn)", "data": args.data, "folds": args.folds,
        "seed": args.seed, "train_and_predict_s": seconds,
        "metrics": {m: float(np.mean([f[m] for f in per_fold])) for m in REPORTED_METRICS},
        "ranking": {m: float(np.mean([r[m] for r in ranked])) for m in RANKING_METRICS},
        "ranking_std": {m: float(np.std([r[m] for r in ranked])) for m in RANKING_METRICS},
    }
    emit_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
