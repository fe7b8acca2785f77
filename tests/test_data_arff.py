"""ARFF reader: the three MEKA files against independent parses, and small files for each rule."""

import bz2
import gzip

import arff as liac_arff
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from comorbid.data import data_root, read_arff
from comorbid.data.arff import meka_label_count


def _real(name):
    root = data_root()
    path = None if root is None else root / "meka" / name
    if path is None or not path.is_file():
        pytest.skip(f"MEKA data not found (set COMORBID_DATA); looked for {path}")
    return path


def _data_rows(text):
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().lower().startswith("@data"))
    return [line for line in lines[start + 1 :] if line.strip() and not line.startswith("%")]


@pytest.mark.parametrize(
    "name, shape, n_labels, first_label",
    [
        # The MEKA Music.arff has 592 rows and 71 features (Mulan's "emotions" has 593 x 72).
        ("Music.arff", (592, 71), 6, "amazed-suprised"),
        ("Scene.arff.bz2", (2407, 294), 6, "beach"),
    ],
)
def test_dense_meka_files_match_numpy(name, shape, n_labels, first_label):
    path = _real(name)
    data = read_arff(path)
    raw = path.read_bytes()
    text = (bz2.decompress(raw) if name.endswith(".bz2") else raw).decode()
    expected = np.array([[float(v) for v in row.split(",")] for row in _data_rows(text)])
    assert isinstance(data.inputs, np.ndarray) and data.inputs.dtype == np.float64
    assert data.inputs.shape == shape and data.n_labels == n_labels
    assert data.label_names[0] == first_label
    np.testing.assert_array_equal(data.labels, expected[:, :n_labels])
    np.testing.assert_array_equal(data.inputs, expected[:, n_labels:])
    assert data.ids[:2] == ["0", "1"] and len(data.ids) == shape[0]
    assert len(data.feature_names) == shape[1]


def test_enron_sparse_matches_liac_coo():
    path = _real("Enron.arff.bz2")
    data = read_arff(path)
    assert sp.issparse(data.inputs) and data.inputs.format == "csr" and data.inputs.dtype == np.float64
    assert data.inputs.shape == (1702, 1001) and data.labels.shape == (1702, 53)
    assert data.label_names[:3] == ["A.A8", "C.C9", "B.B12"]
    # An independent path through liac-arff (COO, no label logic) gives the same matrix.
    obj = liac_arff.load(bz2.open(path, "rt"), encode_nominal=True, return_type=liac_arff.COO)
    values, rows, cols = obj["data"]
    full = sp.coo_matrix((np.array(values, float), (rows, cols)), shape=(1702, 1054)).toarray()
    np.testing.assert_array_equal(data.labels, full[:, :53])
    np.testing.assert_array_equal(data.inputs.toarray(), full[:, 53:])


# ----------------------------------------------------------------------------- small files
HEADER = """% a comment
@relation 'tiny: -C 2 -split 0.5'

@attribute lab_a {0,1}
@attribute lab_b numeric
@attribute height numeric
@attribute colour {red,green,blue}
@attribute weight real

@data
"""
ROWS = "1,0,1.5,green,2\n0,1,0.5,?,3\n% a comment row\n\n1,1,-2,red,4\n"


def _write(tmp_path, text, name="tiny.arff"):
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    elif name.endswith(".bz2"):
        path.write_bytes(bz2.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_dense_one_hot_and_missing(tmp_path):
    data = read_arff(_write(tmp_path, HEADER + ROWS))
    assert data.label_names == ["lab_a", "lab_b"] and data.name == "tiny"
    np.testing.assert_array_equal(data.labels, [[1, 0], [0, 1], [1, 1]])
    assert data.feature_names == ["height", "colour=red", "colour=green", "colour=blue", "weight"]
    expected = [[1.5, 0, 1, 0, 2], [0.5, 0, 0, 0, 3], [-2, 1, 0, 0, 4]]  # colour ?: all zeros
    np.testing.assert_array_equal(data.inputs, expected)
    # A missing number is not imputed (nor left as NaN): an error naming line and attribute.
    with pytest.raises(ValueError, match=r"numeric attribute 'weight' \(attribute 5\), got \? \(missing\) in .*line 15"):
        read_arff(_write(tmp_path, HEADER + ROWS.replace("red,4", "red,?")))


@pytest.mark.parametrize("name", ["tiny.arff.gz", "tiny.arff.bz2"])
def test_compressed_equals_plain(tmp_path, name):
    plain = read_arff(_write(tmp_path, HEADER + ROWS))
    packed = read_arff(_write(tmp_path, HEADER + ROWS, name))
    np.testing.assert_array_equal(packed.inputs, plain.inputs)
    np.testing.assert_array_equal(packed.labels, plain.labels)


def test_sparse_rows(tmp_path):
    # Omitted values: 0 for numeric, the FIRST declared value for nominal (ARFF rule).
    rows = "{0 1,2 1.5,3 blue}\n{1 1}\n{2 0.5,4 7}\n"
    data = read_arff(_write(tmp_path, HEADER + rows))
    assert sp.issparse(data.inputs) and data.inputs.format == "csr"
    np.testing.assert_array_equal(data.labels, [[1, 0], [0, 1], [0, 0]])
    expected = [[1.5, 0, 0, 1, 0], [0, 1, 0, 0, 0], [0.5, 1, 0, 0, 7]]
    np.testing.assert_array_equal(data.inputs.toarray(), expected)
    with pytest.raises(ValueError, match=r"'height' \(attribute 3\), got \? \(missing\) in .*line 13"):
        read_arff(_write(tmp_path, HEADER + rows.replace("2 0.5", "2 ?")))


def test_mixed_dense_and_sparse_rows_give_csr(tmp_path):
    data = read_arff(_write(tmp_path, HEADER + "1,0,1.5,green,2\n{1 1,4 3}\n"))
    assert sp.issparse(data.inputs)
    np.testing.assert_array_equal(data.inputs.toarray(), [[1.5, 0, 1, 0, 2], [0, 1, 0, 0, 3]])
    np.testing.assert_array_equal(data.labels, [[1, 0], [0, 1]])


def test_negative_c_means_last_attributes(tmp_path):
    text = "@relation \"last: -C -2\"\n@attribute x numeric\n@attribute a {0,1}\n@attribute b {0,1}\n@data\n0.5,1,0\n-1,0,0\n"
    data = read_arff(_write(tmp_path, text))
    assert data.label_names == ["a", "b"] and data.feature_names == ["x"]
    np.testing.assert_array_equal(data.labels, [[1, 0], [0, 0]])
    np.testing.assert_array_equal(data.inputs, [[0.5], [-1]])


@pytest.mark.parametrize(
    "relation, expected",
    [("Music: -C 6", 6), ("Scene: -C 6 -R", 6), ("x: -split 3 -C -14", -14), ("-C 3", 3), ("plain", None), ("x:-Cat 2", None)],
)
def test_meka_option_parsing(relation, expected):
    assert meka_label_count(relation) == expected


def test_n_labels_overrides_relation_and_xml(tmp_path):
    path = _write(tmp_path, HEADER + ROWS)
    xml = tmp_path / "labels.xml"
    xml.write_text('<labels xmlns="http://mulan.sourceforge.net/labels"><label name="weight"/></labels>')
    data = read_arff(path, labels_xml=xml, n_labels=1)
    assert data.label_names == ["lab_a"] and data.feature_names[0] == "lab_b"


MULAN = """@relation mulan
@attribute f1 numeric
@attribute f2 numeric
@attribute Animals {0,1}
@attribute Cat {0,1}
@attribute Dog {0,1}
@attribute Plant {0,1}
@data
1,2,1,1,0,0
3,4,0,0,0,1
"""


def test_mulan_flat_and_nested_xml(tmp_path):
    path = _write(tmp_path, MULAN, "mulan.arff")
    flat = tmp_path / "flat.xml"
    flat.write_text(
        '<?xml version="1.0"?>\n<labels xmlns="http://mulan.sourceforge.net/labels">'
        '<label name="Plant"></label><label name="Animals"/><label name="Cat"/><label name="Dog"/></labels>'
    )
    nested = tmp_path / "nested.xml"
    nested.write_text(
        '<labels xmlns="http://mulan.sourceforge.net/labels">\n'
        '  <label name="Animals">\n    <label name="Cat"/>\n    <label name="Dog"/>\n  </label>\n'
        '  <label name="Plant"/>\n</labels>\n'
    )
    for xml in (flat, nested):
        data = read_arff(path, labels_xml=xml)
        assert data.label_names == ["Animals", "Cat", "Dog", "Plant"]  # attribute order
        np.testing.assert_array_equal(data.labels, [[1, 1, 0, 0], [0, 0, 0, 1]])
        np.testing.assert_array_equal(data.inputs, [[1, 2], [3, 4]])


def test_mulan_xml_errors(tmp_path):
    path = _write(tmp_path, MULAN, "mulan.arff")
    unknown = tmp_path / "unknown.xml"
    unknown.write_text('<labels><label name="Cat"/><label name="Fish"/></labels>')
    with pytest.raises(ValueError, match=r"\['Fish'\] named in .*unknown\.xml are not attributes of .*mulan\.arff"):
        read_arff(path, labels_xml=unknown)
    broken = tmp_path / "broken.xml"
    broken.write_text('<labels>\n<label name="Cat">\n</labels>')
    with pytest.raises(ValueError, match=r"Malformed labels XML .*broken\.xml line 3"):
        read_arff(path, labels_xml=broken)


def test_no_label_information_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"No label information for .*mulan\.arff: expected `-C n`.*labels_xml.*n_labels"):
        read_arff(_write(tmp_path, MULAN, "mulan.arff"))


def test_bad_nominal_label_value_names_line(tmp_path):
    # Line 15 is the third data row (after a comment row and a blank line).
    with pytest.raises(ValueError, match=r"tiny\.arff line 15: .*not found in nominal declaration"):
        read_arff(_write(tmp_path, HEADER + ROWS.replace("1,1,-2", "2,1,-2")))


def test_bad_numeric_label_value_names_line(tmp_path):
    with pytest.raises(ValueError, match=r"Expected 0/1 in label attribute 'lab_b' \(attribute 2\), got 2\.0 in .*tiny\.arff line 12"):
        read_arff(_write(tmp_path, HEADER + ROWS.replace("0,1,0.5", "0,2,0.5")))
    with pytest.raises(ValueError, match=r"got \? \(missing\) in .*line 11"):
        read_arff(_write(tmp_path, HEADER + ROWS.replace("1,0,1.5", "?,0,1.5")))


def test_label_attribute_with_other_values_names_its_line(tmp_path):
    text = HEADER.replace("@attribute lab_a {0,1}", "@attribute lab_a {yes,no}")
    with pytest.raises(ValueError, match=r"'lab_a' to be nominal \{0,1\} or numeric, got \{yes,no\} in .*line 4"):
        read_arff(_write(tmp_path, text + "yes,0,1,red,1\n"))


def test_string_feature_is_refused(tmp_path):
    text = "@relation 's: -C 1'\n@attribute a {0,1}\n@attribute note string\n@data\n1,'hello'\n"
    with pytest.raises(ValueError, match=r"STRING attribute 'note' in .* line 3"):
        read_arff(_write(tmp_path, text))


def test_malformed_arff_names_line(tmp_path):
    with pytest.raises(ValueError, match=r"tiny\.arff line 12: .*[Bb]ad @DATA instance format"):
        read_arff(_write(tmp_path, HEADER + ROWS.replace("0,1,0.5,?,3", "0,1,?,3")))
    with pytest.raises(ValueError, match=r"line 11: Invalid numerical value"):
        read_arff(_write(tmp_path, HEADER + ROWS.replace("1.5", "tall")))
    with pytest.raises(ValueError, match=r"line 5: Bad @ATTRIBUTE type"):
        read_arff(_write(tmp_path, HEADER.replace("lab_b numeric", "lab_b nonsense") + ROWS))
    with pytest.raises(ValueError, match="No such file"):
        read_arff(tmp_path / "absent.arff")


def test_c_out_of_range(tmp_path):
    with pytest.raises(ValueError, match=r"non-zero count below the 5 attributes .* got 5"):
        read_arff(_write(tmp_path, HEADER.replace("-C 2", "-C 5") + ROWS))


# ----------------------------------------------------------------------------- round trips
@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    n_rows=st.integers(1, 6),
    n_labels=st.integers(1, 4),
    n_features=st.integers(1, 4),
    sparse=st.booleans(),
    last=st.booleans(),
    data=st.data(),
)
def test_written_matrices_read_back(tmp_path_factory, n_rows, n_labels, n_features, sparse, last, data):
    labels = np.array(data.draw(st.lists(st.lists(st.integers(0, 1), min_size=n_labels, max_size=n_labels), min_size=n_rows, max_size=n_rows)))
    values = st.sampled_from([0.0, 1.0, -2.5, 0.125, 3e5])
    features = np.array(data.draw(st.lists(st.lists(values, min_size=n_features, max_size=n_features), min_size=n_rows, max_size=n_rows)))
    columns = np.hstack([features, labels]) if last else np.hstack([labels, features])
    names = [f"f{i}" for i in range(n_features)]
    label_names = [f"l{i}" for i in range(n_labels)]
    order = names + label_names if last else label_names + names
    kinds = {name: "{0,1}" for name in label_names} | {name: "numeric" for name in names}
    text = f"@relation 'r: -C {-n_labels if last else n_labels}'\n"
    text += "".join(f"@attribute {name} {kinds[name]}\n" for name in order) + "@data\n"
    for row in columns:
        if sparse:
            text += "{" + ",".join(f"{j} {v:g}" for j, v in enumerate(row) if v != 0) + "}\n"
        else:
            text += ",".join(f"{v:g}" for v in row) + "\n"
    path = tmp_path_factory.mktemp("arff") / "r.arff"
    path.write_text(text)
    read = read_arff(path)
    assert sp.issparse(read.inputs) == sparse
    np.testing.assert_array_equal(read.labels, labels)
    np.testing.assert_array_equal(read.inputs.toarray() if sparse else read.inputs, features)
    assert read.label_names == label_names and read.feature_names == names
