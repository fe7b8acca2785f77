"""Issue 11, readers: nothing lost, no traceback, the same answer twice.

Each reproduction below failed (a traceback, or a silently wrong dataset) before its fix.
"""

import bz2
import collections
import contextlib
import csv
import gzip
import io
import os
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import DETERMINISTIC

from comorbid.data import load_dataset, read_cmc_xml
from comorbid.data.dataset import n_inputs
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


def test_arff_integer_attribute_with_nan_or_inf(tmp_path):
    """liac-arff returns a dense row's raw strings for int(float("nan")) and lets OverflowError out."""
    header = "@relation 'r: -C 1'\n@attribute a {0,1}\n@attribute c {lo,hi}\n@attribute n integer\n@data\n"
    for name, row, shown in [("d.arff", "1,hi,nan", r"numeric attribute 'n' \(attribute 3\), got 'nan'"),
                             ("i.arff", "1,hi,inf", "cannot convert float infinity to integer"),
                             ("s.arff", "{0 1,2 nan}", "cannot convert float NaN to integer")]:
        with pytest.raises(ValueError, match=rf"{shown} in .*{name} line 6$|{name} line 6: {shown}$"):
            load_dataset(_write(tmp_path, name, header + row + "\n"))


# ------------------------------------------------------------------- 7. parser errors at the boundary
@pytest.mark.parametrize(
    "name, content, message",
    [
        ("t.arff.gz", gzip.compress(ARFF.encode(), mtime=0)[:40], "Could not decompress .*t\\.arff\\.gz"),
        ("c.arff.gz", gzip.compress(ARFF.encode(), mtime=0)[:20] + b"\xff" * 8 + gzip.compress(ARFF.encode())[28:],
         "Could not decompress .*c\\.arff\\.gz"),
        ("t.arff.bz2", bz2.compress(ARFF.encode())[:30], "Could not decompress .*t\\.arff\\.bz2"),
        ("a.arff", "@relation 'r: -C 1'\n@attribute a {0,1}\n@attribute\nb numeric\n@data\n1,2\n",
         "Invalid ARFF file .*a\\.arff line 3: not enough values"),
        ("l.arff", "@relation 'r: -C 1'\n@attribute a {0,,1}\n@attribute b numeric\n@data\n1,2\n",
         "'a' to be nominal \\{0,1\\} or numeric, got \\{0,None,1\\} in .*l\\.arff line 2"),
        ("u.jsonl", b'{"text": "caf\xe9", "labels": "a"}\n', "Expected UTF-8 text in .*u\\.jsonl line 1, got the byte 0xe9"),
        ("deep.jsonl", "[" * 100_000, "u?deep\\.jsonl"),
    ],
)
def test_parser_errors_become_value_errors_with_the_file(tmp_path, name, content, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(_write(tmp_path, name, content))


def test_a_reader_bug_stays_a_traceback(tmp_path, monkeypatch):
    """Only input errors are converted: a TypeError from a reader is a bug and is not hidden."""
    import comorbid.data.readers as readers

    def broken(path, **options):
        raise TypeError("a bug")

    monkeypatch.setitem(readers.READERS, ".csv", readers.READERS[".csv"]._replace(read=broken))
    with pytest.raises(TypeError, match="a bug"):
        load_dataset(_write(tmp_path, "b.csv", "text,labels\na,b\n"))


# ------------------------------------------------------------------- 5. --label-separator
@pytest.mark.parametrize("command", ["cv", "train", "predict", "report", "evaluate"])
def test_label_separator_reaches_load_dataset_from_every_command(tmp_path, monkeypatch, capsys, command):
    import comorbid.cli as cli
    import comorbid.data

    seen = {}

    def spy(path, **options):
        seen.update(options)
        raise ValueError(f"{path}: stop here")

    monkeypatch.setattr(comorbid.data, "load_dataset", spy)
    monkeypatch.setattr(cli, "_load_model", lambda model_dir: None)
    data = str(_write(tmp_path, "d.csv", "text,labels\na,x|y\n"))
    model = ["model-dir"] if command in ("predict", "report", "evaluate") else []
    out = ["--out", str(tmp_path / "out")] if command in ("train", "predict", "report") else []
    assert cli.main([command, *model, data, *out, "--label-separator", "|"]) == 2
    assert seen["separator"] == "|"
    assert capsys.readouterr().err == f"comorbid: error: {data}: stop here\n"


def test_label_separator_end_to_end_and_empty_refused(tmp_path, capsys):
    from comorbid.cli import main

    path = _write(tmp_path, "d.csv", "text,labels\na,x|y\nb,y\n")
    # --folds 1 stops cv right after reading, with the row count: the cheapest full read.
    assert main(["cv", str(path), "--folds", "1", "--label-separator", "|"]) == 2
    assert capsys.readouterr().err == "comorbid: error: --folds must be between 2 and the number of rows (2), got 1\n"
    assert load_dataset(path, separator="|").label_names == ["x", "y"]
    assert main(["cv", str(path), "--label-separator", ""]) == 2
    assert capsys.readouterr().err == "comorbid: error: Expected a non-empty label separator (--label-separator), got ''\n"


# ------------------------------------------------------------------- 8. fuzzing
CMC = (
    '<?xml version="1.0"?>\n<docs>\n<doc id="1" type="R">\n<codes><code origin="CMC_MAJORITY" type="ICD-9-CM">786.2</code>\n'
    '<code origin="COMPANY1">786.2</code></codes>\n<texts><text origin="X" type="CLINICAL_HISTORY">Cough &amp; fever.</text>\n'
    '<text origin="X" type="IMPRESSION">Normal.</text></texts>\n</doc>\n'
    '<doc id="2"><codes><code origin="CMC_MAJORITY">486</code></codes><texts><text type="findings">Pneumonia.</text></texts></doc>\n</docs>\n'
)
MEKA = (
    "% comment\n@relation 'r: -C 2'\n@attribute a {0,1}\n@attribute b numeric\n@attribute x numeric\n"
    "@attribute n integer\n@attribute c {red,green}\n@data\n1,0,0.5,3,red\n0,1,2,-1,green\n% row comment\n\n1,1,-1,0,?\n"
)
SPARSE = MEKA.split("@data")[0] + "@data\n{0 1,2 0.5}\n{1 1,3 7,4 green}\n{}\n"
SEEDS = {
    "f.csv": 'id,text,labels\nr1,"Cough, fever.",786.2;780.6\nr2,Normal.,\nr3,"Two\nlines",V13.02\n',
    "f.tsv": "id\ttext\tlabels\nr1\tCough.\t786.2;780.6\nr2\tNormal.\t\n",
    "f.jsonl": '{"id": "a", "text": "Cough.", "labels": "786.2;780.6"}\n{"id": "b", "text": "Fever.", "labels": ["780.6"]}\n'
               '{"id": "c", "text": "x", "labels": null}\n',
    "f.xml": CMC,
    "f.arff": MEKA,
    "s.arff": SPARSE,
    "f.arff.gz": MEKA,
    "f.arff.bz2": MEKA,
}
#: Bytes worth inserting: the formats' own syntax, and bytes that are not UTF-8.
TOKENS = [b'"', b",", b";", b"|", b"\t", b"\n", b"{", b"}", b"<", b">", b"?", b"[", b"]", b"%", b"@", b"inf", b"NaN", b"\xff", b"\xe9"]
FUZZ_EXAMPLES = int(os.environ.get("COMORBID_FUZZ_EXAMPLES", "60"))
TRIED = collections.Counter()


def _pack(name, raw):
    if name.endswith(".gz"):
        return gzip.compress(raw, mtime=0)
    return bz2.compress(raw) if name.endswith(".bz2") else raw


@st.composite
def _edits(draw):
    """One edit: ``(kind, where in [0, 1), what)``; kinds truncate, flip, insert, drop a line, repeat a line."""
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "drop_line", "repeat_line"]))
    what = draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=3))
    return kind, draw(st.floats(0, 1, exclude_max=True)), what


def _apply(data: bytes, edits) -> bytes:
    for kind, where, what in edits:
        at = int(where * len(data))
        lines = data.split(b"\n")
        line = int(where * len(lines))
        if kind == "truncate":
            data = data[:at]
        elif kind == "flip" and data:
            data = data[:at] + bytes([data[at] ^ (what[0] or 1)]) + data[at + 1 :]
        elif kind == "insert":
            data = data[:at] + what + data[at:]
        elif kind == "drop_line":
            data = b"\n".join(lines[:line] + lines[line + 1 :])
        elif kind == "repeat_line":
            data = b"\n".join(lines[: line + 1] + lines[line:])
    return data


@st.composite
def _mutated(draw, name):
    """A seed file of format ``name`` after 1-4 edits; compressed files are edited either
    outside (corrupt archives) or inside (corrupt ARFF in a sound archive)."""
    edits = draw(st.lists(_edits(), min_size=1, max_size=4))
    raw = SEEDS[name].encode()
    if name.endswith((".gz", ".bz2")) and draw(st.booleans()):
        return _pack(name, _apply(raw, edits))
    return _apply(_pack(name, raw), edits)


def _check_dataset(data):
    n, m = data.labels.shape
    assert len(data.ids) == n == n_inputs(data.inputs) and len(data.label_names) == m
    if data.is_text:
        assert all(isinstance(text, str) for text in data.inputs)
    else:
        assert data.inputs.shape[1] == len(data.feature_names)
        values = data.inputs.data if sp.issparse(data.inputs) else data.inputs
        assert np.isfinite(values).all()


def _load_or_value_error(path):
    """The dataset, or None after a ValueError that names the file; anything else fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown sections, joined labels: not errors
        try:
            return load_dataset(path)
        except ValueError as error:
            assert path.name in str(error), f"{type(error).__name__} without the file name: {error}"
            return None


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    yield tmp_path_factory.mktemp("fuzz")
    if os.environ.get("COMORBID_FUZZ_REPORT"):
        print(f"\nfuzz inputs tried: {sum(TRIED.values())} {dict(TRIED)}", file=sys.__stderr__)


@pytest.mark.parametrize("name", list(SEEDS))
def test_fuzz_load_dataset_returns_a_dataset_or_a_value_error(fuzz_dir, name):
    # Every seed file reads (so a mutation, not the seed, is what a failure is about).
    _check_dataset(_load_or_value_error(_write(fuzz_dir, name, _pack(name, SEEDS[name].encode()))))

    @settings(DETERMINISTIC, max_examples=FUZZ_EXAMPLES)
    @given(_mutated(name))
    def check(content):
        TRIED[f"load {name}"] += 1
        path = _write(fuzz_dir, name, content)
        data = _load_or_value_error(path)
        if data is not None:
            _check_dataset(data)
            again = _load_or_value_error(path)
            assert again.ids == data.ids and again.label_names == data.label_names  # the same answer twice
            assert np.array_equal(again.labels, data.labels)

    check()


@pytest.mark.parametrize("name", list(SEEDS))
def test_fuzz_cli_exits_2_with_one_line(fuzz_dir, name):
    from comorbid.cli import main

    @settings(DETERMINISTIC, max_examples=max(FUZZ_EXAMPLES // 3, 10))
    @given(_mutated(name))
    def check(content):
        TRIED[f"cli {name}"] += 1
        path = _write(fuzz_dir, "cli-" + name, content)
        err = io.StringIO()
        # --folds 1: a file that reads ends in the folds error, one that does not in its own.
        with warnings.catch_warnings(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            code = main(["cv", str(path), "--folds", "1"])
        assert code == 2
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and lines[0].startswith("comorbid: error: "), lines

    check()
