"""Ranked output as coders use it: ``predict --scores`` and the ranking metrics of cv/evaluate."""

import csv
import json

import numpy as np
import pytest

from comorbid import metrics
from comorbid.cli import _top_codes, main
from comorbid.data import load_dataset
from comorbid.evaluation import RANKING_METRICS, ranking_scores
from comorbid.model import MultiLabelModel


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def model_dir(tiny_csv, tmp_path, capsys):
    directory = tmp_path / "model"
    assert run(capsys, "train", tiny_csv, "--model", "independent", "--decode", "none", "--out", directory)[0] == 0
    return directory


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("top,expected", [(None, 3), (2, 2), (1, 1)])
def test_scores_file_lists_each_rows_top_codes_in_input_order(tiny_csv, model_dir, tmp_path, capsys, top, expected):
    scores = tmp_path / "scores.jsonl"
    extra = [] if top is None else ["--scores-top", top]  # default 50 > M = 3: every code
    code, _, _ = run(capsys, "predict", model_dir, tiny_csv, "--out", tmp_path / "pred.csv", "--scores", scores, *extra)
    assert code == 0
    rows = read_jsonl(scores)
    with tiny_csv.open() as stream:
        ids = [r["id"] for r in csv.DictReader(stream)]
    assert [row["id"] for row in rows] == ids
    model = MultiLabelModel.load(model_dir)
    marginals = model.marginals(load_dataset(str(tiny_csv)))
    for row, p in zip(rows, marginals):
        assert list(row) == ["id", "scores"] and len(row["scores"]) == expected
        values = list(row["scores"].values())
        assert values == sorted(values, reverse=True) and all(0.0 <= v <= 1.0 for v in values)
        assert set(row["scores"]) <= set(model.label_names_)
        best = np.sort(np.round(p, 6))[::-1][:expected]
        np.testing.assert_allclose(values, best, atol=1e-6)
        for name, value in row["scores"].items():
            assert value == round(float(p[model.label_names_.index(name)]), 6)


def test_scores_use_the_decoders_distribution_once(tiny_csv, model_dir, tmp_path, capsys, monkeypatch):
    calls = []
    original = MultiLabelModel.distributions

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MultiLabelModel, "distributions", counting)
    code, _, _ = run(capsys, "predict", model_dir, tiny_csv, "--out", tmp_path / "p.csv", "--scores", tmp_path / "s.jsonl")
    assert code == 0 and len(calls) == 1


@pytest.mark.parametrize("top", ["0", "-3"])
def test_scores_top_must_be_positive(tiny_csv, model_dir, tmp_path, capsys, top):
    scores = tmp_path / "scores.jsonl"
    code, _, err = run(capsys, "predict", model_dir, tiny_csv, "--out", tmp_path / "p.csv", "--scores", scores,
                       "--scores-top", top)
    assert code == 2 and f"--scores-top must be >= 1, got {top}" in err
    assert not scores.exists()


def test_top_codes_matches_a_stable_sort_in_blocks():
    rng = np.random.default_rng(0)
    marginals = rng.choice([0.1, 0.5, 0.9], size=(40, 30)) + rng.random((40, 30)) * 1e-3
    for top in (1, 5, 29, 30, 100):
        expected = np.argsort(-marginals, axis=1, kind="stable")[:, :top]
        np.testing.assert_array_equal(_top_codes(marginals, top), expected)
    ties = np.array([[0.5, 0.5, 0.9, 0.5]])
    np.testing.assert_array_equal(_top_codes(ties, 4), [[2, 0, 1, 3]])  # ties: lower column first


def test_ranking_scores_are_the_functional_metrics():
    rng = np.random.default_rng(1)
    y_true = (rng.random((50, 20)) < 0.2).astype(np.int8)
    y_score = rng.random((50, 20))
    values = ranking_scores(y_true, y_score)
    assert tuple(values) == RANKING_METRICS
    assert values["precision@8"] == metrics.precision_at_k(y_true, y_score, 8)
    assert values["recall@15"] == metrics.recall_at_k(y_true, y_score, 15)
    assert values["map"] == metrics.mean_average_precision(y_true, y_score)


def test_unknown_gold_codes_count_as_misses():
    y_true = np.array([[1, 0, 0], [0, 1, 0]])
    y_score = np.array([[0.9, 0.2, 0.1], [0.1, 0.8, 0.3]])
    unknown = np.array([[1], [0]])  # row 0 also has a gold code the model cannot rank
    known_only = ranking_scores(y_true, y_score)
    with_unknown = ranking_scores(y_true, y_score, unknown)
    assert known_only["map"] == known_only["recall@8"] == 1.0
    assert with_unknown["recall@8"] == pytest.approx((1 / 2 + 1) / 2)
    assert with_unknown["map"] == pytest.approx((1 / 2 + 1) / 2)
    assert with_unknown["precision@5"] == known_only["precision@5"]


def test_evaluate_reports_ranking_metrics_lowered_by_unknown_codes(tiny_csv, model_dir, tmp_path, capsys):
    report = tmp_path / "eval.json"
    code, stdout, _ = run(capsys, "evaluate", model_dir, tiny_csv, "--json", report)
    assert code == 0 and "map" in stdout and "precision@15" in stdout
    ranked = json.loads(report.read_text())["ranking"]
    assert tuple(ranked) == RANKING_METRICS and ranked["map"] > 0.9
    # the same notes with a code the model never saw added to every row
    extended = tmp_path / "extended.csv"
    with tiny_csv.open() as source, extended.open("w", newline="") as target:
        writer = csv.writer(target)
        for i, row in enumerate(csv.reader(source)):
            writer.writerow(row if i == 0 else [row[0], row[1], ";".join(filter(None, [row[2], "unseen"]))])
    report2 = tmp_path / "eval2.json"
    assert run(capsys, "evaluate", model_dir, extended, "--json", report2)[0] == 0
    result = json.loads(report2.read_text())
    assert result["unknown_labels"] == ["unseen"]
    lowered = result["ranking"]
    for metric in ("recall@8", "recall@15", "map"):
        assert lowered[metric] < ranked[metric]
    assert lowered["precision@5"] == ranked["precision@5"]
    assert lowered["recall@15"] < 1.0  # 15 > M = 3: the unknown code would be "ranked" if it were padded


def test_cv_json_contains_the_ranking_block(tiny_csv, tmp_path, capsys):
    out = tmp_path / "cv.json"
    code, stdout, _ = run(capsys, "cv", tiny_csv, "--folds", "2", "--model", "independent", "--decode", "hamming",
                          "--json", out)
    assert code == 0 and "precision@5" in stdout
    ranking = json.loads(out.read_text())["ranking"]
    assert set(ranking) == {"mean", "std", "per_fold"}
    assert tuple(ranking["mean"]) == tuple(ranking["std"]) == RANKING_METRICS
    assert len(ranking["per_fold"]) == 2
    for metric in RANKING_METRICS:
        assert ranking["mean"][metric] == pytest.approx(np.mean([f[metric] for f in ranking["per_fold"]]))
        assert 0.0 <= ranking["mean"][metric] <= 1.0
    assert ranking["mean"]["map"] > 0.8
