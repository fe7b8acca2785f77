"""load_dataset(): dispatch by file name or registered name, and one-line errors."""

import bz2
import gzip
import json

import pytest

from comorbid.data import DATASETS, data_root, load_dataset
from comorbid.testing import readers as suite
from examples import READERS

ARFF = "@relation 'r: -C 1'\n@attribute a {0,1}\n@attribute x numeric\n@data\n1,0.5\n0,2\n"
XML = (
    '<docs><doc id="7"><codes><code origin="CMC_MAJORITY">786.2</code></codes>'
    '<texts><text type="IMPRESSION">Clear.</text></texts></doc></docs>'
)


@pytest.mark.parametrize(
    "name, content, n_labels",
    [
        ("d.xml", XML, 1),
        ("d.arff", ARFF, 1),
        ("d.ARFF.gz", gzip.compress(ARFF.encode(), mtime=0), 1),  # mtime=0: same test id in every xdist worker
        ("d.arff.bz2", bz2.compress(ARFF.encode()), 1),
        ("d.csv", "text,labels\nhi,a;b\n", 2),
        ("d.tsv", "text\tlabels\nhi, there\ta,b\n", 2),  # commas are not delimiters in TSV
        ("d.jsonl", json.dumps({"text": "hi", "labels": ["a"]}) + "\n", 1),
        ("d.json", json.dumps({"text": "hi", "labels": "a;b;c"}) + "\n", 3),
    ],
)
def test_dispatch_by_suffix(tmp_path, name, content, n_labels):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    data = load_dataset(path, separator=",") if name.endswith(".tsv") else load_dataset(path)
    assert data.n_labels == n_labels
    assert len(data) == (2 if ".arff" in name.lower() else 1)


@pytest.mark.parametrize("example", READERS, ids=repr)
def test_reader_conformance(tmp_path, example):
    """The shared reader suite over every registered file ending (tests/examples.py READERS)."""
    suite.check_reads(example, tmp_path)
    suite.check_bad_bytes_name_the_file(example, tmp_path)


def test_column_options_reach_the_reader(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("key,body,codes\nk1,hello,x|y\n")
    data = load_dataset(path, text_column="body", labels_column="codes", id_column="key", separator="|")
    assert data.ids == ["k1"] and data.inputs == ["hello"] and data.label_names == ["x", "y"]


def test_arff_options_reach_the_reader(tmp_path):
    path = tmp_path / "d.arff"
    path.write_text(ARFF.replace("-C 1", "no options").replace("0.5", "1").replace("0,2", "0,0"))
    assert load_dataset(path, n_labels=-1).label_names == ["x"]
    xml = tmp_path / "labels.xml"
    xml.write_text('<labels><label name="a"/></labels>')
    assert load_dataset(path, labels_xml=xml).label_names == ["a"]


def test_unknown_suffix_and_missing_file(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_text("x")
    with pytest.raises(ValueError, match=r"^Unknown data file type 'd\.parquet': expected a name ending in \.xml, .*\.json$"):
        load_dataset(path)
    with pytest.raises(ValueError, match=r"^No such file: .*nothing\.csv \(nor a registered dataset name: cmc2007, "):
        load_dataset(tmp_path / "nothing.csv")
    with pytest.raises(ValueError, match="directory"):
        load_dataset(tmp_path)


def test_registered_name(monkeypatch):
    root = data_root()
    if root is None or not (root / DATASETS["emotions"].relative_path).is_file():
        pytest.skip("real data not found (set COMORBID_DATA)")
    data = load_dataset("emotions")
    assert data.inputs.shape == (592, 71) and data.n_labels == 6
    assert load_dataset("cmc2007").n_labels == 45


def test_existing_file_wins_over_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scene").write_text("not a data file")
    with pytest.raises(ValueError, match="Unknown data file type 'scene'"):
        load_dataset("scene")


def test_name_not_found_locally(monkeypatch, tmp_path):
    monkeypatch.setenv("COMORBID_DATA", str(tmp_path / "none"))
    monkeypatch.setenv("COMORBID_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"Dataset 'enron' not found \(looked at .*\): set COMORBID_DATA"):
        load_dataset("enron")


def test_readers_do_not_import_torch():
    import subprocess
    import sys

    code = "import sys, comorbid.data; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
