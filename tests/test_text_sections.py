"""comorbid.text.sections and preprocess_report, on examples and on the whole CMC 2007 file."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hypothesis import given
from hypothesis import strategies as st

from comorbid.text import annotate, preprocess_note, preprocess_report, section_prefix, section_text, split_sections


def _data_root() -> Path:
    try:
        from comorbid.data.paths import data_root  # created by another part of the project
    except ImportError:
        root = os.environ.get("COMORBID_DATA")
        return Path(root) if root else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    return Path(data_root())


@pytest.fixture(scope="module")
def cmc_reports() -> list[tuple[str, set[str], dict[str, str]]]:
    """``(id, majority codes, {section type: text})`` for every report of the training file."""
    path = _data_root() / "cmc2007" / "2007ChallengeTrainData.xml"
    if not path.exists():
        pytest.skip(f"CMC 2007 data not found at {path} (set COMORBID_DATA)")
    reports = []
    for doc in ET.parse(path).getroot().iter("doc"):
        codes = {c.text.strip() for c in doc.iter("code") if c.get("origin") == "CMC_MAJORITY"}
        sections = {t.get("type"): t.text or "" for t in doc.iter("text")}
        reports.append((doc.get("id"), codes, sections))
    assert len(reports) == 978
    return reports


# --- sections -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, prefix",
    [
        ("CLINICAL_HISTORY", "h_"),
        ("Clinical History", "h_"),
        ("indication", "h_"),
        ("IMPRESSION", "i_"),
        ("FINDINGS", "f_"),
        ("TECHNIQUE", "technique_"),
        ("Reason for exam", "h_"),
    ],
)
def test_section_prefix(name: str, prefix: str) -> None:
    assert section_prefix(name) == prefix


def test_section_prefix_rejects_empty_name() -> None:
    with pytest.raises(ValueError, match="Expected a section name with a letter or digit, got '--'"):
        section_prefix("--")


def test_section_text() -> None:
    sections = {"CLINICAL_HISTORY": "Cough, r/o pneumonia.", "IMPRESSION": "Left lower lobe pneumonia."}
    assert section_text(sections) == (
        "cough r o pneumonia\nh_cough h_r h_o h_pneumonia\n"
        "left lower lobe pneumonia\ni_left i_lower i_lobe i_pneumonia"
    )
    assert section_text(sections, keep_plain=False) == "h_cough h_r h_o h_pneumonia\ni_left i_lower i_lobe i_pneumonia"
    assert section_text(sections, mark=False) == "cough r o pneumonia\nleft lower lobe pneumonia"
    assert section_text("No pneumonia.") == "no pneumonia"  # a str is one untagged section
    sparse = {"IMPRESSION": "", "FINDINGS": None, "TECHNIQUE": "PA view."}
    assert section_text(sparse) == "pa view\ntechnique_pa technique_view"  # type: ignore[arg-type]


def test_section_text_rejects_bad_input() -> None:
    with pytest.raises(TypeError, match="Expected `sections` to be a dict"):
        section_text(["Cough."])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Expected the text of section 'IMPRESSION' to be a str, got int"):
        section_text({"IMPRESSION": 3})  # type: ignore[dict-item]


def test_tfidf_sees_tagged_tokens_as_features() -> None:
    """scikit-learn's default token pattern keeps 'i_neg_pneumonia' whole."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [
        preprocess_report({"CLINICAL_HISTORY": "Cough, rule out pneumonia.", "IMPRESSION": "No focal pneumonia."}),
        preprocess_report({"CLINICAL_HISTORY": "Fever.", "IMPRESSION": "Left lower lobe pneumonia."}),
    ]
    vocabulary = TfidfVectorizer().fit(docs).vocabulary_
    expected = {"pneumonia", "neg_pneumonia", "unc_pneumonia", "i_neg_pneumonia", "h_unc_pneumonia",
                "i_pneumonia", "h_cough", "h_fever"}  # fmt: skip
    assert expected <= vocabulary.keys()


# --- preprocess_report ----------------------------------------------------------------------


def test_preprocess_report_options() -> None:
    sections = {"CLINICAL_HISTORY": "Fever, rule out pneumonia.", "IMPRESSION": "No focal pneumonia."}
    assert preprocess_report(sections) == (
        "fever rule out unc_pneumonia\nh_fever h_rule h_out h_unc_pneumonia\n"
        "no neg_focal neg_pneumonia\ni_no i_neg_focal i_neg_pneumonia"
    )
    assert preprocess_report(sections, section_tags=False) == "fever rule out unc_pneumonia\nno neg_focal neg_pneumonia"
    assert preprocess_report(sections, negation=False) == section_text(sections)
    assert preprocess_report(sections, negation=False, section_tags=False) == section_text(sections, mark=False)
    assert preprocess_report("No pneumonia.") == "no neg_pneumonia"
    # scopes never cross sections: "no" ends the history, the impression starts affirmed
    assert preprocess_report({"CLINICAL_HISTORY": "Cough, no", "IMPRESSION": "pneumonia."}, section_tags=False) == (
        "cough no\npneumonia"
    )


def test_cmc_report_end_to_end(cmc_reports: list[tuple[str, set[str], dict[str, str]]]) -> None:
    report_id, codes, sections = cmc_reports[0]
    assert report_id == "97636670" and codes == {"786.2"}
    assert sections["IMPRESSION"].startswith("1. No focal pneumonia. Likely chronic changes")
    assert preprocess_report(sections).split("\n") == [
        "eleven year old with all bone marrow transplant on jan 2 now with three day history of cough",
        "h_eleven h_year h_old h_with h_all h_bone h_marrow h_transplant h_on h_jan h_2 h_now h_with h_three h_day "
        "h_history h_of h_cough",
        "1 no neg_focal neg_pneumonia likely unc_chronic unc_changes unc_at unc_the unc_left unc_lung base 2 mild "
        "anterior wedging of the thoracic vertebral bodies",
        "i_1 i_no i_neg_focal i_neg_pneumonia i_likely i_unc_chronic i_unc_changes i_unc_at i_unc_the i_unc_left "
        "i_unc_lung i_base i_2 i_mild i_anterior i_wedging i_of i_the i_thoracic i_vertebral i_bodies",
    ]


_TOKEN = re.compile(r"(?:[hi]_)?(?:neg_|unc_)?[^\W_]+")


def test_whole_cmc_file(cmc_reports: list[tuple[str, set[str], dict[str, str]]]) -> None:
    outputs = [preprocess_report(sections) for _, _, sections in cmc_reports]
    assert outputs == [preprocess_report(sections) for _, _, sections in cmc_reports]  # deterministic
    for (report_id, _, sections), text in zip(cmc_reports, outputs):
        assert set(sections) == {"CLINICAL_HISTORY", "IMPRESSION"}, report_id
        assert text, report_id
        assert all(_TOKEN.fullmatch(token) for token in text.split()), report_id
        for section in sections.values():
            for token in annotate(section):
                assert section[token.start : token.end] == token.text
    joined = " ".join(outputs).split()
    assert sum(t.startswith("neg_") for t in joined) > 500  # "No focal pneumonia." is everywhere
    assert sum(t.startswith("unc_") for t in joined) > 500


def test_pneumonia_status_agrees_with_gold_codes(cmc_reports: list[tuple[str, set[str], dict[str, str]]]) -> None:
    """Sanity check against the coders: an affirmed "pneumonia" in the impression is usually coded
    486, a negated one almost never (measured: 74% of 46 vs 7% of 123 reports; uncertain 26% of 34)."""
    counts = {"affirmed": [0, 0], "negated": [0, 0], "uncertain": [0, 0]}
    for _, codes, sections in cmc_reports:
        statuses = {t.status for t in annotate(sections["IMPRESSION"]) if t.text.lower() == "pneumonia"}
        if not statuses:
            continue
        best = "affirmed" if "affirmed" in statuses else "uncertain" if "uncertain" in statuses else "negated"
        counts[best][0] += 1
        counts[best][1] += "486" in codes
    rate = {status: coded / n for status, (n, coded) in counts.items()}
    assert counts["negated"][0] > 100 and counts["affirmed"][0] > 30
    assert rate["affirmed"] > 0.6 and rate["negated"] < 0.15 and rate["negated"] < rate["uncertain"] < rate["affirmed"]


@pytest.mark.parametrize(
    "note, expected",
    [
        ("CLINICAL HISTORY: Cough.\nIMPRESSION: Normal.", [("CLINICAL HISTORY", "Cough."), ("IMPRESSION", "Normal.")]),
        ("Clinical history: Cough.\n  impression:Normal.", [("Clinical history", "Cough."), ("impression", "Normal.")]),
        ("Fever.\nFINDINGS: Clear lungs.", [(None, "Fever."), ("FINDINGS", "Clear lungs.")]),
        ("TECHNIQUE: Two views.\nIMPRESSION: No pneumonia.", [("TECHNIQUE", "Two views."), ("IMPRESSION", "No pneumonia.")]),
        ("Note: seen by Dr. X. Fever.", [(None, "Note: seen by Dr. X. Fever.")]),  # mixed-case unknown: text
        ("IMPRESSION: 1. No effusion.\n2. Atelectasis: mild.", [("IMPRESSION", "1. No effusion.\n2. Atelectasis: mild.")]),
        ("CLINICAL HISTORY: \nIMPRESSION: Normal kidneys.", [("IMPRESSION", "Normal kidneys.")]),  # empty dropped
        ("", []),
    ],
)
def test_split_sections(note: str, expected: list) -> None:
    assert split_sections(note) == expected


@given(st.text(alphabet="abc XYZ:.\n", max_size=80))
def test_split_sections_are_the_note_in_order(note: str) -> None:
    """Section texts are non-empty pieces of the note, in order; without a colon the note is one
    untagged section."""
    position = 0
    for name, text in split_sections(note):
        assert text and text == text.strip()
        found = note.find(text, position)
        assert found >= position
        position = found + len(text)
    if ":" not in note:
        assert split_sections(note) == ([(None, note.strip())] if note.strip() else [])


def test_negated_and_uncertain_modes() -> None:
    text = "Cough. No focal pneumonia. Possible atelectasis."
    assert preprocess_report(text, negated="mark", uncertain="mark") == "cough no neg_focal neg_pneumonia possible unc_atelectasis"
    assert preprocess_report(text, negated="drop", uncertain="drop") == "cough no possible"
    assert preprocess_report(text, negated="drop", uncertain="keep") == "cough no possible atelectasis"
    assert preprocess_report(text, negated="keep", uncertain="drop") == "cough no focal pneumonia possible"
    assert preprocess_report(text, negation=False) == preprocess_report(text, negated="keep", uncertain="keep")
    with pytest.raises(ValueError, match="`negated` to be one of mark, drop, keep"):
        preprocess_report(text, negated="remove")


def test_preprocess_note_uses_the_headers() -> None:
    note = "CLINICAL HISTORY: Fever, rule out pneumonia.\nIMPRESSION: No focal pneumonia."
    sections = {"CLINICAL_HISTORY": "Fever, rule out pneumonia.", "IMPRESSION": "No focal pneumonia."}
    assert preprocess_note(note) == preprocess_report(sections)
    assert preprocess_note(note, negated="drop", uncertain="drop") == "fever rule out\nh_fever h_rule h_out\nno\ni_no"
