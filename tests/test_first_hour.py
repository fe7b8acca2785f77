"""A coder's first hour (issue 14): predicting uncoded notes, standard input, compressed files,
streamed outputs, the CLI's options, and a warning when a model is scored on its training rows."""

from __future__ import annotations

import csv
import gzip
import io
import json

import numpy as np
import pytest

from comorbid import cli
from comorbid.cli import main
from comorbid.model import MultiLabelModel
from conftest import tiny_text_rows


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An independent model on the tiny notes (trained once for the module)."""
    folder = tmp_path_factory.mktemp("first-hour")
    notes = folder / "train.csv"
    with notes.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "text", "labels"])
        for row_id, text, labels in tiny_text_rows():
            writer.writerow([row_id, text, ";".join(labels)])
    assert main(["train", str(notes), "--model", "independent", "--decode", "none", "--out", str(folder / "m")]) == 0
    return folder / "m"


NEW_NOTES = [("n1", "patient has fever and high temperature"), ("n2", "persistent cough for three days"),
             ("n3", "normal chest radiograph"), ("n4", "right lower lobe pneumonia consolidation fever")]


def uncoded_csv() -> bytes:
    return ("id,text\n" + "".join(f"{i},{t}\n" for i, t in NEW_NOTES)).encode()


def uncoded_jsonl() -> bytes:
    return "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in NEW_NOTES).encode()


def expected_rows(model_dir) -> list[list[str]]:
    model = MultiLabelModel.load(model_dir)
    sets = model.predict([t for _, t in NEW_NOTES], ["hamming"])["hamming"]
    return [["id", "labels"]] + [[i, ";".join(n for n, on in zip(model.label_names_, row) if on)]
                                 for (i, _), row in zip(NEW_NOTES, sets)]


def read_rows(path) -> list[list[str]]:
    with open(path, newline="") as stream:
        return list(csv.reader(stream))


# ---------------------------------------------------------------- 1. predicting new notes
@pytest.mark.parametrize("name,content", [("new.csv", uncoded_csv()), ("new.jsonl", uncoded_jsonl()),
                                          ("new.csv.gz", gzip.compress(uncoded_csv())),
                                          ("new.jsonl.gz", gzip.compress(uncoded_jsonl()))])
def test_predict_reads_notes_without_a_labels_column(model_dir, tmp_path, capsys, name, content):
    notes = tmp_path / name
    notes.write_bytes(content)
    out = tmp_path / "pred.csv"
    code, _, err = run(capsys, "predict", model_dir, notes, "--out", out)
    assert code == 0, err
    assert read_rows(out) == expected_rows(model_dir)
    assert b"\r\n" not in out.read_bytes()  # \n line endings


def test_train_still_needs_labels(tmp_path, capsys):
    notes = tmp_path / "new.csv"
    notes.write_bytes(uncoded_csv())
    code, _, err = run(capsys, "train", notes, "--out", tmp_path / "m")
    assert code == 2 and "labels" in err


@pytest.mark.parametrize("content,fmt", [(uncoded_csv(), None), (uncoded_jsonl(), None), (uncoded_csv(), "csv"),
                                         (b"\n  " + uncoded_jsonl(), "jsonl")])
def test_predict_reads_standard_input(model_dir, tmp_path, capsys, monkeypatch, content, fmt):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(content)))
    out = tmp_path / "pred.csv"
    code, _, err = run(capsys, "predict", model_dir, "-", "--out", out, *(["--format", fmt] if fmt else []))
    assert code == 0, err
    assert read_rows(out) == expected_rows(model_dir)


def test_standard_input_of_the_wrong_format_is_one_line(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(uncoded_csv())))
    code, _, err = run(capsys, "predict", model_dir, "-", "--out", tmp_path / "p.csv", "--format", "jsonl")
    assert code == 2 and "standard input" in err and len(err.strip().splitlines()) == 1


def test_predict_streams_batches_and_keeps_the_old_file_on_failure(model_dir, tmp_path, capsys, monkeypatch):
    """Rows are written per batch into the temporary file; a failure mid-way leaves the old output."""
    notes = tmp_path / "new.csv"
    notes.write_bytes(uncoded_csv())
    out, scores = tmp_path / "pred.csv", tmp_path / "scores.jsonl"
    out.write_text("old\n")
    real = cli._predicted_batches
    seen = []

    def batches(*args, **kwargs):
        for batch in real(*args, **{**kwargs, "batch_size": 1}):
            seen.append(batch[0])
            yield batch
            if len(seen) == 2:
                raise RuntimeError("disk on fire")

    monkeypatch.setattr(cli, "_predicted_batches", batches)
    code, _, err = run(capsys, "predict", model_dir, notes, "--out", out, "--scores", scores)
    assert code == 2 and "disk on fire" in err
    assert out.read_text() == "old\n" and not scores.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    monkeypatch.setattr(cli, "_predicted_batches", lambda *a, **k: real(*a, **{**k, "batch_size": 3}))
    assert run(capsys, "predict", model_dir, notes, "--out", out, "--scores", scores)[0] == 0
    assert read_rows(out) == expected_rows(model_dir)
    assert [json.loads(line)["id"] for line in scores.read_text().splitlines()] == [i for i, _ in NEW_NOTES]


# ---------------------------------------------------------------- 3. the CLI's options
def test_version(capsys):
    import importlib.metadata

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"comorbid {importlib.metadata.version('comorbid')}"


def test_help_has_panels_typed_choices_and_no_bool_metavars(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0
    for panel in ("Data", "Model", "Training", "Decoding", "Output"):
        assert f"─ {panel} ─" in out, panel
    calibrate = next(line for line in out.splitlines() if "--calibrate" in line)
    assert "--no-calibrate" in calibrate and "<bool>" not in calibrate and "<str>" not in calibrate
    assert "<auto|yes|no>" in out and "<l2|l1>" in out
    assert not [line for line in out.splitlines() if "<str>" in line and "--" in line]


@pytest.mark.parametrize("argv,message", [
    (["--calibrate", "yes"], "a flag takes no value"),
    (["--model", "bogus"], "'bogus' is not one of"),
    (["--encoder", "bert"], "'bert' is not one of 'auto'"),
    (["--epochs", "0"], "--epochs must be > 0"),
])
def test_bad_flags_are_one_line(tiny_csv, tmp_path, capsys, argv, message):
    code, _, err = run(capsys, "train", tiny_csv, "--out", tmp_path / "m", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_config_file_sets_options_and_flags_win(tiny_csv, tmp_path, capsys):
    config = tmp_path / "coder.toml"
    config.write_text('model = "independent"\nencoder = "tfidf"\nepochs = 7\nlearning_rate = 0.005\n'
                      'batch-size = 16\nweight_decay = 0.001\ndecode = "none"\ncalibrate = false\n'
                      'encoder_option = ["min_df=1"]\n')
    out = tmp_path / "m"
    code, _, err = run(capsys, "train", tiny_csv, "--out", out, "--config", config, "--weight-decay", "0.01")
    assert code == 0, err
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"] == "independent" and saved["encoder"]["name"] == "tfidf"
    assert saved["encoder"]["options"]["min_df"] == 1
    train = saved["train"]
    assert (train["epochs"], train["learning_rate"], train["batch_size"]) == (7, 0.005, 16)
    assert train["weight_decay"] == 0.01  # the flag wins over the file
    assert "decoders" not in saved or saved["decoders"] == {}


@pytest.mark.parametrize("content,message", [("colour = 'blue'\n", "unknown key 'colour'"),
                                             ("model = \n", "not a valid TOML file")])
def test_config_file_errors_name_the_file_and_key(tiny_csv, tmp_path, capsys, content, message):
    config = tmp_path / "bad.toml"
    config.write_text(content)
    code, _, err = run(capsys, "cv", tiny_csv, "--config", config)
    assert code == 2 and str(config) in err and message in err, err


# ---------------------------------------------------------------- 4. scored on its training rows
def test_fingerprint_flags_training_rows_only():
    from comorbid.fingerprint import fingerprint, seen_rows

    saved = fingerprint(["a note\r\nwith  fever", "another"])
    assert saved["rows"] == 2 and len(saved["hashes"]) == 24  # 2 x 8 bytes, base64
    np.testing.assert_array_equal(seen_rows(saved, ["a note\nwith fever", "new", "another"]), [True, False, True])
    dense = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(seen_rows(fingerprint(dense[:2]), dense), [True, True, False, False])
    import scipy.sparse as sp

    np.testing.assert_array_equal(seen_rows(fingerprint(sp.csr_matrix(dense[2:])), sp.csr_matrix(dense)),
                                  [False, False, True, True])


def test_fingerprint_size_at_50000_rows():
    from comorbid.fingerprint import fingerprint

    saved = fingerprint([f"note {i}" for i in range(50_000)])
    assert len(json.dumps(saved)) < 550_000  # about 10.7 characters a row


def test_report_and_evaluate_warn_on_training_rows(model_dir, tmp_path, capsys):
    saved = json.loads((model_dir / "config.json").read_text())
    assert saved["training_fingerprint"]["rows"] == 60
    training = tmp_path / "train.csv"
    rows = tiny_text_rows()
    with training.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "text", "labels"])
        for row_id, text, labels in rows[:30]:  # half training rows ...
            writer.writerow([row_id, text, ";".join(labels)])
        for row_id, text, labels in tiny_text_rows(30, seed=7):  # ... half new texts
            writer.writerow([row_id + "x", text + " unseen", ";".join(labels)])
    html = tmp_path / "report.html"
    code, _, err = run(capsys, "report", model_dir, training, "--out", html)
    assert code == 0 and "WARNING" in err and "30 of 60 rows (50%)" in " ".join(err.split())
    assert 'class="warning">WARNING: 30 of 60 rows (50%)' in html.read_text()
    code, _, err = run(capsys, "evaluate", model_dir, training)
    assert code == 0 and "30 of 60 rows (50%)" in " ".join(err.split())


def test_no_warning_on_new_rows(model_dir, tmp_path, capsys):
    new = tmp_path / "new.csv"
    new.write_text("id,text,labels\na,cough cough fever,fever\nb,nothing at all,\n")
    code, _, err = run(capsys, "evaluate", model_dir, new)
    assert code == 0 and "WARNING" not in err


def test_report_shows_a_dash_for_codes_with_no_support_and_no_prediction():
    from comorbid.report.html import UNDEFINED, render_report

    y_true = np.array([[1, 0, 0], [0, 0, 1]])
    y_pred = np.array([[1, 0, 0], [0, 0, 0]])
    html = render_report("t", y_true, y_pred, y_true * 0.9, ["a", "b", "c"], {}, {"micro_f1": 0.5})
    row_b = next(line for line in html.splitlines() if "<td class=\"text\">b</td>" in line)
    assert row_b.count(f"<td>{UNDEFINED}</td>") == 3 and "0.000" not in row_b
    row_c = next(line for line in html.splitlines() if "<td class=\"text\">c</td>" in line)
    assert "<td>0.000</td>" in row_c  # missed: defined, and 0
