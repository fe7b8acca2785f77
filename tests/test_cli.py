import csv
import json

import pytest

from comorbid.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cv_writes_the_documented_json(tiny_csv, tmp_path, capsys):
    out = tmp_path / "cv.json"
    code, stdout, _ = run(capsys, "cv", str(tiny_csv), "--folds", "3", "--model", "chain", "--json", str(out))
    assert code == 0
    result = json.loads(out.read_text())
    assert result["model"] == "chain" and result["folds"] == 3
    assert set(result["metrics"]) == {"hamming", "subset", "instance-f1"}
    for decoder, metrics in result["metrics"].items():
        assert set(metrics) == {"subset_accuracy", "hamming_loss", "micro_f1", "macro_f1", "instance_f1", "jaccard"}
        assert len(result["per_fold"][decoder]) == 3
        assert metrics["subset_accuracy"] > 0.8
    assert "chain / subset" in stdout


def test_train_predict_evaluate_round_trip(tiny_csv, tmp_path, capsys):
    model_dir = tmp_path / "model"
    assert run(capsys, "train", str(tiny_csv), "--model", "independent", "--out", str(model_dir))[0] == 0
    predictions = tmp_path / "pred.csv"
    assert run(capsys, "predict", str(model_dir), str(tiny_csv), "--decode", "instance-f1", "--out", str(predictions))[0] == 0
    with predictions.open() as stream:
        rows = list(csv.reader(stream))
    with tiny_csv.open() as stream:
        source = list(csv.reader(stream))
    assert rows[0] == ["id", "labels"]
    assert [r[0] for r in rows[1:]] == [r[0] for r in source[1:]]  # input order
    agree = sum(set(filter(None, p[1].split(";"))) == set(filter(None, s[2].split(";"))) for p, s in zip(rows[1:], source[1:]))
    assert agree / (len(rows) - 1) > 0.9
    report = tmp_path / "eval.json"
    assert run(capsys, "evaluate", str(model_dir), str(tiny_csv), "--json", str(report))[0] == 0
    assert json.loads(report.read_text())["metrics"]["subset"]["subset_accuracy"] > 0.9


@pytest.mark.parametrize(
    "argv,message",
    [
        (["cv", "missing.csv"], "missing.csv"),
        (["cv", "{csv}", "--model", "bogus"], "Unknown model 'bogus'"),
        (["cv", "{csv}", "--decode", "nope"], "Unknown decoder 'nope'"),
        (["cv", "{csv}", "--folds", "1"], "--folds"),
        (["cv", "{csv}", "--folds", "x"], "--folds"),
        (["cv", "{csv}", "--text-column", "body"], "body"),
        (["predict", "{tmp}", "{csv}", "--out", "{tmp}/p.csv"], "not a comorbid model directory"),
        (["train", "{csv}", "--out", "{tmp}/m", "--model", "chain", "--loss", "focal"], "independent model only"),
        (["frobnicate"], "No such command"),
        (["cv", "{csv}", "--loss", "nope"], "Unknown loss 'nope'"),
    ],
)
def test_bad_input_exits_2_with_one_line(tiny_csv, tmp_path, capsys, argv, message):
    argv = [a.format(csv=tiny_csv, tmp=tmp_path) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("comorbid: error:") and message in lines[0], lines[0]


def test_cv_with_a_coupled_loss(tiny_csv, tmp_path, capsys):
    out = tmp_path / "cv.json"
    code, _, _ = run(capsys, "cv", str(tiny_csv), "--folds", "2", "--loss", "lsep", "--decode", "top-k=1", "--json", str(out))
    assert code == 0
    assert json.loads(out.read_text())["loss"] == "lsep"
