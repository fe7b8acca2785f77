"""`comorbid cv --report DIR`: the report page from out-of-fold predictions (no in-sample number)."""

import json
import re
from html import unescape

import numpy as np
import pytest

from comorbid.cli import main
from comorbid.data.splits import kfold_indices
from comorbid.evaluation import cross_validate, evaluate_predictions
from comorbid.model import MultiLabelModel
from test_model import tiny_dataset


def _summary(page: str) -> dict[str, str]:
    """The Summary table's ``{metric: shown value}``."""
    table = page.split("<h2>Summary</h2>", 1)[1].split("</table>", 1)[0]
    return dict(re.findall(r'<tr><td class="text">([^<]+)</td><td>([^<]+)</td></tr>', table))


def _per_code(page: str) -> dict[str, list[str]]:
    table = page.split("<h2>Per-code precision, recall and F1</h2>", 1)[1].split("</table>", 1)[0]
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in table.split("<tr>")[2:]]
    return {row[0]: row[1:] for row in rows}


def test_out_of_fold_predictions_are_each_rows_test_fold_prediction():
    data = tiny_dataset(60)
    make = lambda: MultiLabelModel("independent")  # noqa: E731
    result = cross_validate(data, make, ["hamming", "subset"], n_folds=3, seed=0, keep_out_of_fold=True)
    kept = result["out_of_fold"]
    folds = kfold_indices(data.labels, n_folds=3, seed=0)
    for index, (train_rows, test_rows) in enumerate(folds, start=1):
        assert (kept.fold[test_rows] == index).all()
        model = make().fit(data.subset(train_rows), decoders=["hamming", "subset"])
        predicted, marginals = model.predict_with_marginals(data.subset(test_rows), ["hamming", "subset"])
        np.testing.assert_array_equal(kept.predictions["subset"][test_rows], predicted["subset"])
        np.testing.assert_allclose(kept.marginals[test_rows], marginals)
        # the fold's own metrics, as cross_validate computed them, from the kept rows
        fold_scores = evaluate_predictions(data.labels[test_rows], {"hamming": kept.predictions["hamming"][test_rows]},
                                           data.label_names)["hamming"]
        assert fold_scores == pytest.approx(result["per_fold"]["hamming"][index - 1])
    pooled = kept.metrics()
    assert pooled["hamming"] == evaluate_predictions(data.labels, {"hamming": kept.predictions["hamming"]},
                                                     data.label_names)["hamming"]
    # row-averaged metrics pool as the row-weighted mean of the folds
    sizes = np.array([len(test) for _, test in folds])
    accuracies = np.array([f["subset_accuracy"] for f in result["per_fold"]["subset"]])
    assert pooled["subset"]["subset_accuracy"] == pytest.approx((accuracies * sizes).sum() / sizes.sum())
    assert "out_of_fold" not in cross_validate(data, make, ["hamming"], n_folds=2, seed=0)


def test_cli_cv_report_writes_out_of_fold_pages(tiny_csv, tmp_path, capsys):
    report_dir, json_path = tmp_path / "reports", tmp_path / "cv.json"
    args = ["cv", str(tiny_csv), "--folds", "2", "--model", "independent", "--decode", "hamming,instance-f1",
            "--json", str(json_path), "--report", str(report_dir)]
    assert main(args) == 0
    assert "out-of-fold reports" in capsys.readouterr().err
    assert sorted(p.name for p in report_dir.iterdir()) == ["hamming.html", "index.html", "instance-f1.html"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".reports.")]  # no staging left
    result = json.loads(json_path.read_text())
    index = (report_dir / "index.html").read_text()
    for decoder in ("hamming", "instance-f1"):
        assert f'href="{decoder}.html"' in index
        page = (report_dir / f"{decoder}.html").read_text()
        assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
        assert "WARNING" not in page and 'class="warning"' not in page  # nothing scored in sample
        assert "Out-of-fold predictions: 2-fold" in unescape(page)
        shown = _summary(page)
        expected = result["out_of_fold_metrics"][decoder]
        assert set(shown) == set(expected)
        for metric, value in expected.items():
            assert shown[metric] == f"{value:.3f}", metric
        # the per-code table counts every row once: support is each code's count in the data
        codes = _per_code(page)
        assert set(codes) == {"fever", "cough", "pneumonia"}
        lines = tiny_csv.read_text().splitlines()[1:]
        for code, cells in codes.items():
            assert int(cells[0]) == sum(code in line.split(",")[-1].split(";") for line in lines)
    # the pooled metrics are not the mean over folds, and both are in the JSON
    assert set(result["metrics"]) == set(result["out_of_fold_metrics"])
    # a second run replaces the report directory; a folder that is not one is refused before any work
    assert main(args[:-2] + ["--decode", "hamming", "--report", str(report_dir)]) == 0
    assert sorted(p.name for p in report_dir.iterdir()) == ["hamming.html", "index.html"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(args[:-1] + [str(other)]) == 2
    assert "not a comorbid report directory" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"
