"""Issue 11, readers: nothing lost, no traceback, the same answer twice.

Each reproduction below failed (a traceback, or a silently wrong dataset) before its fix.
"""

import csv
import warnings

import pytest

from comorbid.data import load_dataset, read_cmc_xml
from comorbid.data.cmc import note_text
from comorbid.text import preprocess_note


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# ------------------------------------------------------------------- 1. long CSV fields
def test_csv_field_longer_than_the_csv_default_limit(tmp_path):
    note = "pneumonia " * 20_000  # 200,000 characters: over the csv module's 131,072
    path = _write(tmp_path, "long.csv", f'text,labels\n"{note}",486\nshort,786.2\n')
    limit = csv.field_size_limit()
    data = load_dataset(path)
    assert data.inputs == [note, "short"] and data.label_names == ["486", "786.2"]
    assert csv.field_size_limit() == limit  # the module-wide limit is restored


def test_csv_errors_name_file_and_line(tmp_path):
    path = _write(tmp_path, "quote.csv", 'text,labels\nfine,1\n"unclosed,2\nlost,3\n')
    with pytest.raises(ValueError, match=r"Malformed CSV in .*quote\.csv line \d+: unexpected end of data"):
        load_dataset(path)
    path = _write(tmp_path, "bytes.csv", b"text,labels\nfine,1\ncaf\xe9,2\n")
    with pytest.raises(ValueError, match=r"Expected UTF-8 text in .*bytes\.csv line 3, got the byte 0xe9"):
        load_dataset(path)


# ------------------------------------------------------------------- 2-3. CMC XML
def _cmc(tmp_path, texts, name="r.xml"):
    body = "".join(f'<text origin="X" type="{kind}">{text}</text>' for kind, text in texts)
    xml = f'<docs><doc id="1"><codes><code origin="CMC_MAJORITY">486</code></codes><texts>{body}</texts></doc></docs>'
    return _write(tmp_path, name, xml)


def test_cmc_nested_doc_names_file_and_line(tmp_path):
    path = _write(tmp_path, "nested.xml", '<docs>\n<doc id="1">\n<doc id="2"></doc>\n</doc>\n</docs>\n')
    with pytest.raises(ValueError, match=r"Expected </doc> before the next <doc>.* in .*nested\.xml line 3$"):
        load_dataset(path)
    path = _write(tmp_path, "code.xml", '<docs><doc id="1">\n<code origin="A"><text type="X">t</text></code></doc></docs>')
    with pytest.raises(ValueError, match=r"Expected </code> before <text>.* in .*code\.xml line 2$"):
        load_dataset(path)


def test_cmc_section_types_match_ignoring_case(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known sections in another case: no warning
        data = read_cmc_xml(_cmc(tmp_path, [("clinical_history", "Cough."), ("impression", "Pneumonia.")]))
    assert data.inputs == ["CLINICAL HISTORY: Cough.\nIMPRESSION: Pneumonia."]
    assert data.extras["sections"] == [{"CLINICAL_HISTORY": "Cough.", "IMPRESSION": "Pneumonia."}]


def test_cmc_unknown_sections_are_kept_featurised_and_warned_once(tmp_path):
    texts = [("technique", "PA view."), ("IMPRESSION", "Pneumonia."), ("FINDINGS", "Opacity."), ("7", "Seven.")]
    with pytest.warns(UserWarning, match=r"r\.xml: section type\(s\) \['7', 'FINDINGS', 'technique'\]") as caught:
        data = read_cmc_xml(_cmc(tmp_path, texts))
    assert len(caught) == 1
    assert data.extras["sections"][0] == {
        "CLINICAL_HISTORY": "", "IMPRESSION": "Pneumonia.", "technique": "PA view.", "FINDINGS": "Opacity.", "7": "Seven."
    }
    note = data.inputs[0]
    assert note == note_text(data.extras["sections"][0])
    assert note.splitlines()[2:] == ["TECHNIQUE: PA view.", "FINDINGS: Opacity.", "OTHER: Seven."]
    # The clinical encoder's preprocessing tags every kept section's words.
    tokens = preprocess_note(note).split()
    assert {"i_pneumonia", "technique_pa", "f_opacity", "other_seven"} <= set(tokens)


# ------------------------------------------------------------------- 5. joined labels
@pytest.mark.parametrize("joiner", [",", "|"])
def test_labels_joined_by_another_character_warn(tmp_path, joiner):
    path = _write(tmp_path, "j.csv", f'text,labels\na,"486{joiner}786.2"\nb,"599.0{joiner}V13.02"\nc,\nd,401.9\n')
    with pytest.warns(UserWarning, match=rf"j\.csv: 2 of 3 label cells contain '\{joiner}'.*--label-separator '\{joiner}'"):
        data = load_dataset(path)
    assert f"486{joiner}786.2" in data.label_names  # still read as told
    assert load_dataset(path, separator=joiner).label_names == ["401.9", "486", "599.0", "786.2", "V13.02"]
    rows = [f'{{"text": "a", "labels": "486{joiner}786.2"}}', '{"text": "b", "labels": ["401.9"]}']
    with pytest.warns(UserWarning, match=r"j\.jsonl: 1 of 1 label cells"):
        load_dataset(_write(tmp_path, "j.jsonl", "\n".join(rows)))


def test_few_odd_label_cells_do_not_warn(tmp_path):
    path = _write(tmp_path, "f.csv", 'text,labels\na,"486,786.2"\nb,599.0\nc,401.9;486\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_dataset(path).label_names) == 4


# ------------------------------------------------------------------- 6. JSON label types
@pytest.mark.parametrize(
    "labels, shown",
    [("[493.90]", "the number 493.9; quote them"), ("[\"486\", 7]", "the number 7; quote them"),
     ("[true]", "true"), ("[null]", "null"), ("[[\"486\"]]", r"a list \[\"486\"\]"), ("[{}]", r"an object \{\}")],
)
def test_jsonl_label_names_must_be_strings(tmp_path, labels, shown):
    path = _write(tmp_path, "n.jsonl", '{"text": "a", "labels": ["486"]}\n{"text": "b", "labels": %s}\n' % labels)
    with pytest.raises(ValueError, match=rf"^Expected label names as strings in 'labels' in .*n\.jsonl line 2, got {shown}$"):
        load_dataset(path)


# ------------------------------------------------------------------- 4. ARFF inf / NaN / ?
ARFF = "@relation 'r: -C 1'\n@attribute a {0,1}\n@attribute x numeric\n@attribute y real\n@data\n1,0.5,1\n0,2,CELL\n"


@pytest.mark.parametrize("cell", ["inf", "-inf", "NaN", "nan", "Infinity"])
@pytest.mark.parametrize("suffix", [".arff", ".arff.gz"])
def test_arff_non_finite_number_is_refused(tmp_path, cell, suffix):
    import gzip

    text = ARFF.replace("CELL", cell).encode()
    path = _write(tmp_path, "r" + suffix, gzip.compress(text) if suffix.endswith(".gz") else text)
    with pytest.raises(ValueError, match=rf"finite number in numeric attribute 'y' \(attribute 3\), got {float(cell)!r} in .*r\.arff.* line 7$"):
        load_dataset(path)
    sparse = ARFF.replace("1,0.5,1\n0,2,CELL", "{0 1,1 0.5}\n{2 CELL}").replace("CELL", cell).encode()
    with pytest.raises(ValueError, match=r"finite number .*'y'.* line 7$"):
        load_dataset(_write(tmp_path, "s.arff", sparse))


def test_arff_missing_number_is_refused_missing_nominal_is_zeros(tmp_path):
    with pytest.raises(ValueError, match=r"got \? \(missing\) in .*r\.arff line 7; missing numeric features are not imputed"):
        load_dataset(_write(tmp_path, "r.arff", ARFF.replace("CELL", "?")))
    nominal = ARFF.replace("@attribute y real", "@attribute y {lo,hi}").replace("0.5,1", "0.5,hi").replace("CELL", "?")
    data = load_dataset(_write(tmp_path, "n.arff", nominal))
    assert data.inputs.tolist() == [[0.5, 0, 1], [2, 0, 0]]
