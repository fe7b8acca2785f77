"""CMC 2007 XML reader: the real files (numbers from the data README) and small broken files."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from comorbid.data import annotator_labels, data_root, read_cmc_xml
from comorbid.data.cmc import HEADERS
from comorbid.text import split_sections


def _real(name):
    root = data_root()
    path = None if root is None else root / "cmc2007" / name
    if path is None or not path.is_file():
        pytest.skip(f"CMC 2007 data not found (set COMORBID_DATA); looked for {path}")
    return path


@pytest.fixture(scope="module")
def train():
    return read_cmc_xml(_real("2007ChallengeTrainData.xml"))


def test_train_file_numbers_from_readme(train):
    assert len(train) == 978
    assert train.n_labels == 45
    assert len({tuple(row) for row in train.labels}) == 94
    assert round(train.labels.sum() / len(train), 2) == 1.25
    assert train.label_names == sorted(train.label_names)
    assert len(set(train.ids)) == 978
    assert train.labels.sum(1).min() >= 1  # every report has a majority code


def test_first_report_exactly(train):
    assert train.ids[0] == "97636670"
    assert [train.label_names[j] for j in np.flatnonzero(train.labels[0])] == ["786.2"]
    history = "Eleven year old with ALL, bone marrow transplant on Jan. 2, now with three day history of cough."
    assert train.extras["sections"][0]["CLINICAL_HISTORY"] == history
    assert train.inputs[0].startswith(f"CLINICAL HISTORY: {history}\nIMPRESSION: 1. No focal pneumonia.")
    assert train.extras["annotator_codes"]["COMPANY1"][0] == ["204.0", "786.2", "V42.81"]
    assert train.extras["annotator_codes"]["COMPANY2"][0] == ["204.00", "786.2"]


def test_matches_elementtree(train):
    """Every doc's codes, per origin, and texts agree with a plain ElementTree reading."""
    docs = ET.parse(_real("2007ChallengeTrainData.xml")).getroot().findall("doc")
    assert [d.get("id") for d in docs] == train.ids
    for i, doc in enumerate(docs):
        for origin in ("COMPANY1", "COMPANY2", "COMPANY3"):
            expected = [c.text for c in doc.iter("code") if c.get("origin") == origin]
            assert train.extras["annotator_codes"][origin][i] == expected
        gold = sorted(c.text for c in doc.iter("code") if c.get("origin") == "CMC_MAJORITY")
        assert [train.label_names[j] for j in np.flatnonzero(train.labels[i])] == gold
        text = {t.get("type"): t.text.strip() for t in doc.iter("text")}
        assert train.inputs[i] == f"CLINICAL HISTORY: {text['CLINICAL_HISTORY']}\nIMPRESSION: {text['IMPRESSION']}"
        assert split_sections(train.inputs[i]) == [
            (header, text[name]) for name, header in HEADERS.items() if text[name]
        ]


def test_annotator_agreement_from_readme(train):
    """Companies vs majority, micro-F1 over all codes: 0.84 / 0.88 / 0.82 (data README)."""
    gold_codes = [[train.label_names[j] for j in np.flatnonzero(row)] for row in train.labels]
    for origin, expected in (("COMPANY1", 0.84), ("COMPANY2", 0.88), ("COMPANY3", 0.82)):
        codes = train.extras["annotator_codes"][origin]
        binarizer = MultiLabelBinarizer().fit(gold_codes + codes)
        score = f1_score(binarizer.transform(gold_codes), binarizer.transform(codes), average="micro")
        assert round(score, 2) == expected


def test_annotator_labels_over_label_names(train):
    matrix = annotator_labels(train, "COMPANY2")
    assert matrix.shape == train.labels.shape and matrix.dtype == np.int8
    binarizer = MultiLabelBinarizer(classes=train.label_names)
    with pytest.warns(UserWarning, match="unknown"):  # scikit-learn warns about dropped codes
        expected = binarizer.fit_transform(train.extras["annotator_codes"]["COMPANY2"])
    np.testing.assert_array_equal(matrix, expected)
    # Over the 45 majority codes only: 0.876 / 0.928 / 0.821.
    scores = [f1_score(train.labels, annotator_labels(train, o), average="micro") for o in ("COMPANY1", "COMPANY2", "COMPANY3")]
    np.testing.assert_allclose(scores, [0.876, 0.928, 0.821], atol=5e-4)
    with pytest.raises(ValueError, match="CMC_MAJORITY"):
        annotator_labels(train, "CMC_MAJORITY")


def test_subset_keeps_annotators_aligned(train):
    rows = np.array([5, 0, 977])
    part = train.subset(rows)
    np.testing.assert_array_equal(annotator_labels(part, "COMPANY3"), annotator_labels(train, "COMPANY3")[rows])
    assert part.extras["sections"][1] == train.extras["sections"][0]


def test_company_as_gold(train):
    company = read_cmc_xml(_real("2007ChallengeTrainData.xml"), gold="COMPANY1")
    assert set(company.extras["annotator_codes"]) == {"CMC_MAJORITY", "COMPANY2", "COMPANY3"}
    assert "V42.81" in company.label_names
    np.testing.assert_array_equal(
        annotator_labels(company, "CMC_MAJORITY"), train.with_label_names(company.label_names).labels
    )


def test_test_file_has_no_label_columns():
    test = read_cmc_xml(_real("2007ChallengeTestDataNoCodes.xml"))
    assert len(test) == 976
    assert test.labels.shape == (976, 0) and test.label_names == []
    assert test.extras["annotator_codes"] == {}
    assert test.inputs[0] == "CLINICAL HISTORY: Seventeen year old with cough.\nIMPRESSION: Normal."


# ----------------------------------------------------------------------------- small files
def _write(tmp_path, body, name="docs.xml"):
    path = tmp_path / name
    path.write_text(f"<?xml version='1.0'?>\n<docs>\n{body}\n</docs>\n")
    return path


GOOD = """  <doc id="1" type="RADIOLOGY_REPORT">
    <codes>
      <code origin="CMC_MAJORITY" type="ICD-9-CM">786.2</code>
      <code origin="COMPANY1" type="ICD-9-CM">786.2</code>
      <code origin="COMPANY1" type="ICD-9-CM">780.6</code>
    </codes>
    <texts>
      <text origin="X" type="CLINICAL_HISTORY">Cough &amp; fever.</text>
      <text origin="X" type="IMPRESSION">Normal.</text>
    </texts>
  </doc>
  <doc id="2" type="RADIOLOGY_REPORT">
    <codes><code origin="CMC_MAJORITY" type="ICD-9-CM">V13.02</code>
    <code origin="CMC_MAJORITY" type="ICD-9-CM">599.0</code></codes>
    <texts><text origin="X" type="IMPRESSION">Normal kidneys.</text></texts>
  </doc>"""


def test_small_file(tmp_path):
    data = read_cmc_xml(_write(tmp_path, GOOD))
    assert data.ids == ["1", "2"]
    assert data.label_names == ["599.0", "786.2", "V13.02"]
    np.testing.assert_array_equal(data.labels, [[0, 1, 0], [1, 0, 1]])
    assert data.inputs == [  # missing history: ""
        "CLINICAL HISTORY: Cough & fever.\nIMPRESSION: Normal.",
        "CLINICAL HISTORY: \nIMPRESSION: Normal kidneys.",
    ]
    assert data.extras["sections"][1] == {"CLINICAL_HISTORY": "", "IMPRESSION": "Normal kidneys."}
    assert data.extras["annotator_codes"] == {"COMPANY1": [["786.2", "780.6"], []]}
    np.testing.assert_array_equal(annotator_labels(data, "COMPANY1"), [[0, 1, 0], [0, 0, 0]])  # 780.6 ignored


def test_malformed_xml_names_file_and_line(tmp_path):
    path = _write(tmp_path, GOOD.replace("    </texts>\n  </doc>\n  <doc", "  </doc>\n  <doc", 1))
    with pytest.raises(ValueError, match=r"Malformed XML in .*docs\.xml line 12, column 5: mismatched tag"):
        read_cmc_xml(path)
    # A missing </doc> is found where the next <doc> opens inside it, before the XML error.
    path = _write(tmp_path, GOOD.replace("</texts>\n  </doc>\n  <doc", "</texts>\n  <doc", 1))
    with pytest.raises(ValueError, match=r"Expected </doc> before the next <doc>, .* in .*docs\.xml line 13$"):
        read_cmc_xml(path)


def test_doc_without_id_names_line(tmp_path):
    with pytest.raises(ValueError, match=r"`id` attribute on <doc>.*docs\.xml line 14$"):
        read_cmc_xml(_write(tmp_path, GOOD.replace('<doc id="2"', "<doc")))


def test_repeated_id_names_both_lines(tmp_path):
    with pytest.raises(ValueError, match=r"'1' again \(first at line 3\) in .* line 14"):
        read_cmc_xml(_write(tmp_path, GOOD.replace('<doc id="2"', '<doc id="1"')))


def test_code_without_origin_or_text(tmp_path):
    with pytest.raises(ValueError, match=r"`origin` attribute on <code>.* line 5"):
        read_cmc_xml(_write(tmp_path, GOOD.replace('<code origin="CMC_MAJORITY" type="ICD-9-CM">786.2', '<code type="x">786.2')))
    with pytest.raises(ValueError, match=r"empty element in .* line 5"):
        read_cmc_xml(_write(tmp_path, GOOD.replace('"ICD-9-CM">786.2</code>\n      <code origin="COMPANY1"', '"ICD-9-CM"> </code>\n      <code origin="COMPANY1"', 1)))


def test_unknown_gold_lists_origins(tmp_path):
    with pytest.raises(ValueError, match=r"origin 'MAJORITY'.*\['CMC_MAJORITY', 'COMPANY1'\]"):
        read_cmc_xml(_write(tmp_path, GOOD), gold="MAJORITY")


def test_no_docs_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="found none"):
        read_cmc_xml(_write(tmp_path, ""))
    with pytest.raises(ValueError, match="No such file"):
        read_cmc_xml(tmp_path / "absent.xml")
