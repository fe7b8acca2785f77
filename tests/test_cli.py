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


ICD_OF_WORD = {"fever": "780.6", "cough": "786.2", "pneumonia": "486"}


def test_cv_reports_the_tree_metrics_for_icd_labels(tmp_path, capsys):
    from conftest import tiny_text_rows

    from comorbid.evaluation import COST_METRICS, REPORTED_METRICS

    data, out = tmp_path / "icd.csv", tmp_path / "cv.json"
    with data.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "text", "labels"])
        for row_id, text, labels in tiny_text_rows():
            writer.writerow([row_id, text, ";".join(ICD_OF_WORD[name] for name in labels)])
    code, stdout, _ = run(capsys, "cv", str(data), "--folds", "2", "--model", "independent", "--decode",
                          "hamming,mbr", "--json", str(out))
    assert code == 0
    result = json.loads(out.read_text())
    for decoder in ("hamming", "mbr"):
        assert list(result["metrics"][decoder]) == [*REPORTED_METRICS, *COST_METRICS]
        assert set(result["std"][decoder]) == {*REPORTED_METRICS, *COST_METRICS}
        assert all(set(fold) == {*REPORTED_METRICS, *COST_METRICS} for fold in result["per_fold"][decoder])
    assert "tree_cost" in stdout and "hierarchical_f1" in stdout


def test_evaluate_predictions_adds_the_tree_metrics_only_for_icd_codes():
    import numpy as np

    from comorbid import metrics
    from comorbid.evaluation import REPORTED_METRICS, evaluate_predictions

    y_true, y_pred = np.array([[1, 0, 0], [0, 1, 1]]), np.array([[0, 1, 0], [0, 1, 0]])
    codes = ["786.2", "786.07", "486"]
    scores = evaluate_predictions(y_true, {"d": y_pred}, codes)["d"]
    assert scores["tree_cost"] == metrics.tree_cost(y_true, y_pred, codes)
    assert scores["hierarchical_f1"] == metrics.hierarchical_f1(y_true, y_pred, codes)
    # "fever" parses as an ICD-10-CM code (FEV.ER) but is none: no tree metrics for words
    for names in (None, ["fever", "cough", "asthma"], ["a", "b", "c"]):
        assert list(evaluate_predictions(y_true, {"d": y_pred}, names)["d"]) == list(REPORTED_METRICS)


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
        (["cv", "{csv}", "--model", "bogus"], "'--model': Value error, 'bogus' is not one of 'independent'"),
        (["cv", "{csv}", "--decode", "nope"], "Unknown decoder 'nope'"),
        (["cv", "{csv}", "--folds", "1"], "--folds"),
        (["cv", "{csv}", "--folds", "x"], "--folds"),
        (["cv", "{csv}", "--text-column", "body"], "body"),
        (["predict", "{tmp}", "{csv}", "--out", "{tmp}/p.csv"], "not a comorbid model directory"),
        (["train", "{csv}", "--out", "{tmp}/m", "--model", "chain", "--loss", "focal"], "independent model only"),
        (["frobnicate"], "No such command"),
        (["cv", "{csv}", "--model", "independent", "--loss", "nope"], "Unknown loss 'nope'"),
        (["cv", "{csv}", "--loss", "focal"], "independent model only"),
        (["cv", "{csv}", "--head-option", "order"], "KEY=VALUE"),
        (["cv", "{csv}", "--head-option", "order=sideways"], "Expected `order`"),
        (["cv", "{csv}", "--penalty", "l3"], "'--penalty': Value error, 'l3' is not one of 'l2', 'l1'"),
        (["cv", "{csv}", "--nonempty", "maybe"], "'--nonempty': Value error, 'maybe' is not one of 'auto', 'yes', 'no'"),
        (["cv", "{csv}", "--balance", "log"], "'--balance': Value error, 'log' is not one of 'none', 'sqrt', 'inverse'"),
        (["cv", "{csv}", "--encoder-option", "colour=blue"], "Bad option for the clinical encoder"),
        (["cv", "{csv}", "--head-option", "colour=blue"], "Bad option for the chain model"),
        (["cv", "{csv}", "--decode", "hamming,mbr=missing.csv"], "icd-tree, one of"),
        (["cv", "{csv}", "--decode", "mbr"], "Expected ICD-9-CM or ICD-10-CM codes"),
        (["cv", "{csv}", "--decode", "macro-f1=x"], "macro-f1=FBR"),
        (["cv", "{csv}", "--decode", "top-k=0"], "k >= 1"),
        (["cv", "{csv}", "--decode", "mbr={tmp}/bad_cost.csv"], "bad_cost.csv line 3: expected numbers"),
        (["cv", "{csv}", "--decode", "mbr={tmp}/partial_cost.csv"], "has no row for 1 label(s) of the model: pneumonia"),
        (["train", "{csv}", "--out", "{tmp}/m", "--decode", "nope"], "Unknown decoder 'nope'"),
    ],
)
def test_bad_input_exits_2_with_one_line(tiny_csv, tmp_path, capsys, argv, message):
    (tmp_path / "bad_cost.csv").write_text("label,fever,cough\nfever,0,1\ncough,x,0\n")
    (tmp_path / "partial_cost.csv").write_text("label,fever,cough\nfever,0,1\ncough,1,0\n")
    argv = [a.format(csv=tiny_csv, tmp=tmp_path) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("comorbid: error:") and message in lines[0], lines[0]


def test_cv_with_a_coupled_loss(tiny_csv, tmp_path, capsys):
    out = tmp_path / "cv.json"
    code, _, _ = run(capsys, "cv", str(tiny_csv), "--folds", "2", "--model", "independent", "--loss", "lsep",
                     "--decode", "top-k=1", "--json", str(out))
    assert code == 0
    assert json.loads(out.read_text())["loss"] == "lsep"


def test_cv_with_every_new_decoder_and_a_cost_file(tiny_csv, tmp_path, capsys):
    cost = tmp_path / "cost.csv"
    cost.write_text("label,fever,cough,pneumonia\nfever,0,1,1\ncough,1,0,0.2\npneumonia,1,0.2,0\n")
    out = tmp_path / "cv.json"
    decoders = f"jaccard,macro-f1,micro-f1,mbr=hamming,mbr={cost}"
    code, _, err = run(capsys, "cv", str(tiny_csv), "--folds", "2", "--decode", decoders, "--json", str(out))
    assert code == 0, err
    result = json.loads(out.read_text())
    assert set(result["metrics"]) == set(decoders.split(","))
    for decoder, metrics in result["metrics"].items():
        assert metrics["instance_f1"] > 0.8, decoder


def test_train_tunes_thresholds_for_predict_unless_told_not_to(tiny_csv, tmp_path, capsys):
    model_dir, bare_dir = tmp_path / "model", tmp_path / "bare"
    assert run(capsys, "train", str(tiny_csv), "--out", str(model_dir))[0] == 0
    assert set(json.loads((model_dir / "config.json").read_text())["decoders"]) == {"macro-f1", "micro-f1"}
    predictions = tmp_path / "pred.csv"
    assert run(capsys, "predict", str(model_dir), str(tiny_csv), "--decode", "macro-f1", "--out", str(predictions))[0] == 0
    report = tmp_path / "eval.json"
    code, _, _ = run(capsys, "evaluate", str(model_dir), str(tiny_csv), "--decode", "micro-f1,jaccard", "--json", str(report))
    assert code == 0 and json.loads(report.read_text())["metrics"]["micro-f1"]["micro_f1"] > 0.9
    assert run(capsys, "train", str(tiny_csv), "--out", str(bare_dir), "--decode", "none")[0] == 0
    code, _, err = run(capsys, "predict", str(bare_dir), str(tiny_csv), "--decode", "macro-f1", "--out", str(predictions))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "needs thresholds tuned on held-out data" in lines[0]


def test_cv_defaults_to_the_clinical_chain_and_takes_head_options(tiny_csv, tmp_path, capsys):
    out = tmp_path / "cv.json"
    code, stdout, _ = run(capsys, "cv", str(tiny_csv), "--folds", "2", "--head-option", "order=rare-first",
                          "--encoder-option", "char_ngram_range=null", "--encoder-option", "min_df=1",
                          "--head-option", "beam_size=8", "--penalty", "l2", "--nonempty", "no", "--json", str(out))
    assert code == 0, stdout
    result = json.loads(out.read_text())
    assert result["model"] == "chain" and result["encoder"] == "auto"
    assert result["head_options"] == {"order": "rare-first", "beam_size": 8}
    assert result["encoder_options"] == {"char_ngram_range": None, "min_df": 1}
    assert "chain / subset" in stdout


def test_train_records_the_resolved_encoder_and_its_training_defaults(tiny_csv, tmp_path, capsys):
    assert run(capsys, "train", str(tiny_csv), "--out", str(tmp_path / "m"), "--decode", "none")[0] == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"] == "chain" and config["encoder"]["name"] == "clinical"
    assert config["train"]["penalty"] == "l1"  # the clinical encoder's default
    assert run(capsys, "train", str(tiny_csv), "--out", str(tmp_path / "m2"), "--decode", "none",
               "--encoder", "tfidf", "--weight-decay", "0.001")[0] == 0
    config = json.loads((tmp_path / "m2" / "config.json").read_text())
    assert config["train"]["penalty"] == "l2" and config["train"]["weight_decay"] == 0.001


def test_cv_and_train_with_calibration_and_an_ensemble(tiny_csv, tmp_path, capsys):
    out = tmp_path / "cv.json"
    code, _, err = run(capsys, "cv", str(tiny_csv), "--folds", "2", "--model", "independent", "--calibrate",
                       "--ensemble", "2", "--balance", "sqrt", "--json", str(out))
    assert code == 0, err
    result = json.loads(out.read_text())
    assert len(result["ece"]) == 2 and all(0 <= e <= 1 for e in result["ece"])
    assert all(c["temperature"] > 0 for c in result["calibration"])
    assert "temperatures" in err
    code, _, err = run(capsys, "train", str(tiny_csv), "--out", str(tmp_path / "m"), "--calibrate", "--decode", "none")
    assert code == 0 and "calibration on" in err and "temperature" in err
    assert run(capsys, "cv", str(tiny_csv), "--ensemble", "0")[0] == 2
