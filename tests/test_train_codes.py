"""`comorbid train --codes FILE`: candidate codes without a training note, suggested by their descriptions."""

import json

import pytest

from comorbid.cli import main
from comorbid.data.labels import read_code_list
from comorbid.model import MultiLabelModel

#: ICD-10-CM codes and the words of notes that have them; A23.9 ("Brucellosis, unspecified")
#: is in no note, only in the code list
WORDS = {"J18.9": "pneumonia in the right lower lobe", "R50.9": "fever for three days",
         "I10": "known essential hypertension"}


def write_notes(path, n=40):
    codes = list(WORDS)
    with open(path, "w") as stream:
        for i in range(n):
            on = [codes[i % 3]] + ([codes[(i + 1) % 3]] if i % 2 else [])
            text = "patient seen today with " + " and ".join(WORDS[code] for code in on)
            stream.write(json.dumps({"id": f"r{i}", "text": text, "labels": on}) + "\n")
    return path


def test_read_code_list_skips_blanks_comments_and_repeats(tmp_path):
    listed = tmp_path / "codes.txt"
    listed.write_bytes("\ufeff# candidates\nA23.9\n\n  I10  \r\nA23.9\nZ99.89\n".encode())
    assert read_code_list(listed) == ["A23.9", "I10", "Z99.89"]


@pytest.mark.parametrize("content, message", [
    (b"A23.9\nI10\nA23.9 Brucellosis\n", "line 3: expected one code a line, got 'A23.9 Brucellosis'"),
    (b"A23.9,I10\n", "line 1: expected one code a line, got 'A23.9,I10' (put each code"),
    (b"I10\n\xff\xfe\n", "line 2: not UTF-8 text"),
    (b"# nothing\n\n", "lists no code"),
])
def test_a_bad_code_list_names_the_file_and_line(tmp_path, content, message):
    listed = tmp_path / "codes.txt"
    listed.write_bytes(content)
    with pytest.raises(ValueError) as error:
        read_code_list(listed)
    assert str(error.value).startswith(str(listed)) and message in str(error.value)


def test_train_codes_adds_candidates_that_the_descriptions_suggest(tmp_path, capsys):
    notes = write_notes(tmp_path / "notes.jsonl")
    listed = tmp_path / "codes.txt"
    listed.write_text("A23.9\nI10\n")
    out = tmp_path / "model"
    code = main(["train", str(notes), "--out", str(out), "--codes", str(listed), "--model", "independent",
                 "--head-option", "descriptions=true", "--decode", "none"])
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert code == 0, err
    assert "1 codes without a training note added as candidates" in err
    model = MultiLabelModel.load(out)
    assert model.label_names_[-1] == "A23.9" and sorted(model.label_names_[:-1]) == sorted(WORDS)
    unseen = model.marginals(["fever, brucellosis suspected after raw milk", "fever for three days"])[:, -1]
    assert unseen[0] > unseen[1] + 0.3


def test_train_codes_warns_when_the_model_matches_no_descriptions(tmp_path, capsys):
    notes = write_notes(tmp_path / "notes.jsonl")
    listed = tmp_path / "codes.txt"
    listed.write_text("A23.9\n")
    code = main(["train", str(notes), "--out", str(tmp_path / "model"), "--codes", str(listed), "--model",
                 "independent", "--head-option", "descriptions=false", "--decode", "none"])
    assert code == 0
    assert "matches no code descriptions" in " ".join(capsys.readouterr().err.split())


def test_train_with_a_bad_code_list_fails_with_file_and_line_before_training(tmp_path, capsys):
    notes = write_notes(tmp_path / "notes.jsonl")
    listed = tmp_path / "codes.txt"
    listed.write_text("A23.9\nI10;J18.9\n")
    out = tmp_path / "model"
    code = main(["train", str(notes), "--out", str(out), "--codes", str(listed)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{listed} line 2: expected one code a line" in err
    assert not out.exists() or not any(out.iterdir())
    assert main(["train", str(notes), "--out", str(out), "--codes", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt: no such code list file" in capsys.readouterr().err
