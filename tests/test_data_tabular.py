"""CSV/TSV and JSON Lines readers."""

import json

import numpy as np
import pytest
from sklearn.preprocessing import MultiLabelBinarizer

from comorbid.data import read_csv, read_jsonl


def test_csv_basic(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('text,labels\n"Cough, fever.",786.2;780.6\nNormal.,\n"Two\nlines",V13.02\n')
    data = read_csv(path)
    assert data.inputs == ["Cough, fever.", "Normal.", "Two\nlines"]
    assert data.ids == ["0", "1", "2"]
    assert data.label_names == ["780.6", "786.2", "V13.02"]
    expected = MultiLabelBinarizer(classes=data.label_names).fit_transform([["786.2", "780.6"], [], ["V13.02"]])
    np.testing.assert_array_equal(data.labels, expected)
    assert data.name == "notes"


def test_tsv_with_ids_and_custom_columns(tmp_path):
    path = tmp_path / "notes.tsv"
    path.write_text("id\tcodes\tnote\nA7\t486 | 786.2\tPneumonia.\nB1\t\tClear.\n")
    data = read_csv(path, text_column="note", labels_column="codes", id_column="id", separator="|")
    assert data.ids == ["A7", "B1"] and data.inputs == ["Pneumonia.", "Clear."]
    assert data.label_names == ["486", "786.2"]
    np.testing.assert_array_equal(data.labels, [[1, 1], [0, 0]])


def test_csv_errors(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("note,labels\nx,y\n")
    with pytest.raises(ValueError, match=r"column\(s\) \['text'\] in .*a\.csv line 1, found columns \['note', 'labels'\]"):
        read_csv(path)
    path.write_text("")
    with pytest.raises(ValueError, match="empty file"):
        read_csv(path)
    path.write_text("text,labels\n")
    with pytest.raises(ValueError, match="at least one row"):
        read_csv(path)
    path.write_text("text,labels\na,b\nc,d,e\n")
    with pytest.raises(ValueError, match=r"Expected 2 fields .*a\.csv line 3, got 3"):
        read_csv(path)
    path.write_text("id,text,labels\n1,a,b\n2,c,d\n1,e,f\n")
    with pytest.raises(ValueError, match=r"'1' again at line 4 \(first at line 2\)"):
        read_csv(path, id_column="id")
    with pytest.raises(ValueError, match="No such file"):
        read_csv(tmp_path / "absent.csv")


def test_jsonl_string_and_list_labels(tmp_path):
    path = tmp_path / "notes.jsonl"
    rows = [
        {"text": "Cough.", "labels": "786.2", "id": 10},
        {"text": "Fever and cough.", "labels": ["780.6", "786.2"], "id": 11},
        {"text": "Normal.", "labels": [], "id": 12},
        {"text": "UTI.", "labels": "599.0; ", "id": 13},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + "\n".join(json.dumps(r) for r in rows[2:]) + "\n")
    data = read_jsonl(path, id_column="id")
    assert data.ids == ["10", "11", "12", "13"]
    assert data.label_names == ["599.0", "780.6", "786.2"]
    np.testing.assert_array_equal(data.labels, [[0, 0, 1], [0, 1, 1], [0, 0, 0], [1, 0, 0]])
    assert data.inputs[1] == "Fever and cough."


def test_json_array_file(tmp_path):
    path = tmp_path / "notes.json"
    path.write_text(json.dumps([{"text": "a", "labels": ["x"]}, {"text": "b", "labels": "y;x"}]))
    data = read_jsonl(path)
    np.testing.assert_array_equal(data.labels, [[1, 0], [1, 1]])


def test_jsonl_errors(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "labels": "x"}\n\n{"text": "b", "labels": "x"\n')
    with pytest.raises(ValueError, match=r"Invalid JSON in .*bad\.jsonl line 3"):
        read_jsonl(path)
    path.write_text('{"text": "a", "labels": "x"}\n{"txt": "b", "labels": "x"}\n')
    with pytest.raises(ValueError, match=r"key\(s\) \['text'\] in .* line 2, found keys \['labels', 'txt'\]"):
        read_jsonl(path)
    path.write_text('{"text": "a", "labels": {"x": 1}}\n')
    with pytest.raises(ValueError, match=r"string or a list of names in .* line 1"):
        read_jsonl(path)
    path.write_text('{"text": 3, "labels": "x"}\n')
    with pytest.raises(ValueError, match=r"Expected a string in 'text' .* line 1, got int"):
        read_jsonl(path)
    path.write_text('["text", "labels"]\n')
    with pytest.raises(ValueError, match="Expected a JSON object"):
        read_jsonl(path)
    path.write_text("\n\n")
    with pytest.raises(ValueError, match="at least one row"):
        read_jsonl(path)
