"""The scale benchmark's harness on a tiny size: cells, limits, metrics, merged results, report."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import label_ranking_average_precision_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bench_scale  # noqa: E402
from benchmarks.bench_scale import Method  # noqa: E402
from comorbid.data import synthetic_icd10_set  # noqa: E402


def test_map_is_label_ranking_average_precision_without_ties():
    rng = np.random.default_rng(0)
    y_true = (rng.random((40, 30)) < 0.2).astype(np.int8)
    y_true[y_true.sum(axis=1) == 0, 0] = 1
    y_score = rng.random((40, 30))
    assert bench_scale._map(y_true, y_score) == pytest.approx(label_ranking_average_precision_score(y_true, y_score))


def test_map_breaks_ties_by_column_and_skips_rows_without_labels():
    y_true = np.array([[0, 1, 0], [0, 0, 0]], dtype=np.int8)
    y_score = np.zeros((2, 3))  # column 1 ranks second among the tied scores
    assert bench_scale._map(y_true, y_score) == pytest.approx(0.5)


def test_sizes_parse_codes_then_notes():
    assert bench_scale.parse_size("1000x20000") == (1000, 20000)
    assert bench_scale.parse_size("5,000x50,000") == (5000, 50000)
    with pytest.raises(Exception, match="MxN"):
        bench_scale.parse_size("1000")


def _sleeps(cell):
    time.sleep(30)


def _allocates(cell):
    return {"scores": np.ones((1 << 28,)), "predicted": None, "fit_s": 0.0, "predict_s": 0.0}


@pytest.mark.slow
def test_limits_give_timeout_and_out_of_memory_cells():
    methods = [Method("sleeper", "sleeps", _sleeps, features=False),
               Method("hog", "allocates 2 GiB", _allocates, features=False),
               Method("absent", "needs a missing module", _sleeps, features=False, requires="no_such_module_here")]
    cells = bench_scale.run_size(20, 60, methods, seed=0, seconds=3, memory_gib=0.5, ours_options={}, log=print)
    assert [c["status"] for c in cells] == ["timeout", "out of memory", "not installed"]


@pytest.mark.slow
def test_end_to_end_writes_merged_json_table_and_plot(tmp_path):
    argv = ["--sizes", "20x80", "--methods", "sklearn-ovr-svc", "--out", str(tmp_path)]
    assert bench_scale.main(argv) == 0
    assert bench_scale.main(["--sizes", "20x100", "--methods", "sklearn-ovr-svc", "--out", str(tmp_path)]) == 0
    assert bench_scale.main(argv) == 0  # replaces its own cell
    results = json.loads((tmp_path / "scale.json").read_text())
    assert [(c["codes"], c["notes"]) for c in results["cells"]] == [(20, 80), (20, 100)]
    for cell in results["cells"]:
        assert cell["status"] == "ok" and cell["test_notes"] == cell["notes"] // 10
        assert cell["train_s"] >= cell["fit_s"] > 0 and cell["predict_notes_per_s"] > 0
        assert cell["peak_rss_gib"] >= cell["start_rss_gib"] > 0
        for metric in ("p_at_8", "map", "micro_f1"):
            assert 0.0 <= cell[metric] <= 1.0
    assert len(results["runs"]) == 3
    table = (tmp_path / "scale.md").read_text()
    assert "| sklearn-ovr-svc | 20 | 80 |" in table
    assert (tmp_path / "scale.png").stat().st_size > 0
    assert bench_scale.main(["--report", "--out", str(tmp_path)]) == 0
    assert bench_scale.main(["--methods", "nothing-matches", "--out", str(tmp_path)]) == 2


def test_sklearn_peer_learns_the_right_columns_beyond_128_codes():
    """scikit-learn 1.9.1 scrambles int8 label matrices wider than 128 columns; the peer must not."""
    data = synthetic_icd10_set(n_notes=150, n_codes=200, seed=1)
    vectorizer = TfidfVectorizer(**bench_scale.TFIDF)
    features = vectorizer.fit_transform(data.inputs).tocsr()
    cell = bench_scale.Cell(data.inputs, data.inputs, data.labels, data.label_names, features, features, 0, {})
    result = bench_scale.METHODS[0].run(cell)  # sklearn-ovr-svc, scored on its training notes
    assert bench_scale.score(data.labels, result["scores"], result["predicted"])["map"] > 0.9
