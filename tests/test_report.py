"""Report statistics against brute force / scikit-learn, and the HTML page."""

import base64
import re
from html.parser import HTMLParser
from itertools import product

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from comorbid.cli import main
from comorbid.model import MultiLabelModel
from comorbid.report import error_pairs, model_report, per_label_scores, reliability, write_atomic
from test_model import tiny_dataset


def random_labels(seed, n=40, m=5):
    rng = np.random.default_rng(seed)
    return (rng.random((n, m)) < 0.3).astype(np.int8), (rng.random((n, m)) < 0.3).astype(np.int8)


@pytest.mark.parametrize("seed", range(5))
def test_per_label_scores_equal_scikit_learn(seed):
    y_true, y_pred = random_labels(seed)
    y_true[:, 0] = 0  # a label with no support
    y_pred[:, 1] = 0  # a label never predicted
    scores = per_label_scores(y_true, y_pred, list("abcde"))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    np.testing.assert_allclose([x.precision for x in scores], p)
    np.testing.assert_allclose([x.recall for x in scores], r)
    np.testing.assert_allclose([x.f1 for x in scores], f)
    assert [x.support for x in scores] == list(s)


@pytest.mark.parametrize("seed", range(3))
def test_error_pairs_count_rows_by_brute_force(seed):
    y_true, y_pred = random_labels(seed)
    matrix = error_pairs(y_true, y_pred)
    for j, k in product(range(5), repeat=2):
        expected = sum(1 for t, p in zip(y_true, y_pred) if p[j] and not t[j] and t[k] and not p[k])
        assert matrix[j, k] == expected
    assert np.all(np.diag(matrix) == 0)


def test_reliability_bins_and_ece_by_hand():
    y = np.array([[0, 1], [1, 1], [0, 0]])
    p = np.array([[0.05, 0.95], [0.55, 1.0], [0.15, 0.45]])
    stats = reliability(y, p, bins=2)
    np.testing.assert_array_equal(stats.counts, [3, 3])
    np.testing.assert_allclose(stats.confidence, [(0.05 + 0.15 + 0.45) / 3, (0.95 + 0.55 + 1.0) / 3])
    np.testing.assert_allclose(stats.frequency, [0, 1])
    expected = 0.5 * abs(0.65 / 3 - 0) + 0.5 * abs(2.5 / 3 - 1)
    assert stats.ece == pytest.approx(expected)
    assert reliability(y, y.astype(float)).ece == 0.0  # certain and right: calibrated
    assert np.isnan(reliability(y, p, bins=10).confidence[3])  # an empty bin
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability(y, p + 0.5)
    with pytest.raises(ValueError, match="one shape"):
        reliability(y, p[:, :1])


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.images, self.cells = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in ("meta", "img", "br"):
            self.stack.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "td":
            self.cells.append(data)


def check_html(page: str) -> _Collector:
    parser = _Collector()
    parser.feed(page)
    parser.close()
    assert page.startswith("<!DOCTYPE html>") and not parser.stack
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    return parser


def test_model_report_is_valid_html_with_the_table_and_images():
    data = tiny_dataset(60)
    model = MultiLabelModel("independent").fit(tiny_dataset(30, seed=1))
    page = model_report(model, data, decode="hamming")
    parsed = check_html(page)
    assert parsed.tags.count("table") >= 3 and len(parsed.images) >= 1
    for name in ("cough", "fever", "pneumonia", "never-seen"):
        assert name in parsed.cells
    assert "expected calibration error" in page.lower()


def test_report_escapes_label_names_and_counts_unknown_labels():
    data = tiny_dataset(30)
    data = data.with_label_names([*data.label_names, "<b>new</b>"])
    data.labels[:3, -1] = 1
    model = MultiLabelModel("independent").fit(tiny_dataset(30))
    page = model_report(model, data)
    assert "<b>new</b>" not in page and "&lt;b&gt;new&lt;/b&gt;" in page
    check_html(page)


def test_write_atomic_leaves_nothing_half_written(tmp_path, monkeypatch):
    target = tmp_path / "r.html"
    write_atomic(target, "<p>old</p>")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("comorbid.io.os.replace", broken)
    with pytest.raises(OSError):
        write_atomic(target, "<p>new</p>")
    assert target.read_text() == "<p>old</p>" and [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_cli_report_writes_the_page(tiny_csv, tmp_path, capsys):
    model_dir, out = tmp_path / "m", tmp_path / "out" / "report.html"
    assert main(["train", str(tiny_csv), "--out", str(model_dir), "--model", "chain"]) == 0
    assert main(["report", str(model_dir), str(tiny_csv), "--out", str(out), "--decode", "subset"]) == 0
    page = out.read_text()
    check_html(page)
    assert re.search(r"decoder subset", page)
    assert main(["report", str(model_dir), str(tiny_csv), "--out", str(out), "--bins", "0"]) == 2
    assert "--bins" in capsys.readouterr().err
