"""comorbid.text.negation and tokens: NegEx-style scopes on sentences in CMC 2007's style."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comorbid.text import Token, annotate, mark_scopes, split_sentences, word_spans
from comorbid.text import negation


def status_of(text: str, word: str, occurrence: int = 0, window: int = negation.DEFAULT_WINDOW) -> str:
    hits = [t for t in annotate(text, window) if t.text.lower() == word.lower()]
    assert len(hits) > occurrence, f"{word!r} not found {occurrence + 1} time(s) in {text!r}"
    return hits[occurrence].status


N, U, A = "negated", "uncertain", "affirmed"

CASES = [
    # plain negation
    ("No focal pneumonia.", {"pneumonia": N, "focal": N}),
    ("No pneumonia.", {"pneumonia": N}),
    ("Lungs are clear without evidence of pneumonia.", {"pneumonia": N, "lungs": A, "clear": A}),
    ("Negative for pneumonia.", {"pneumonia": N}),
    ("No evidence of pulmonary tuberculosis.", {"tuberculosis": N}),
    ("Intermittent increased work of breathing since birth without fever or cough.",
     {"fever": N, "cough": N, "breathing": A}),
    ("The lungs are well expanded, but not hyperinflated.", {"expanded": A, "hyperinflated": N}),
    ("Pneumonia is unlikely.", {"pneumonia": N}),
    ("Pneumonia was ruled out.", {"pneumonia": N}),
    ("PPD is negative.", {"ppd": N}),
    # resolved / no longer seen
    ("Previously seen right hydronephrosis has resolved.", {"hydronephrosis": N}),
    ("The right lower lobe opacity is no longer seen.", {"opacity": N}),
    ("Interval resolution of right lower lobe pneumonia.", {"pneumonia": N}),
    ("Resolved peribronchial cuffing.", {"cuffing": N}),
    # uncertainty: not coded under the outpatient guidelines
    ("Rule out pneumonia.", {"pneumonia": U}),
    ("Cough, rule out pneumonia.", {"cough": A, "pneumonia": U}),
    ("R/O pneumonia.", {"pneumonia": U}),
    ("Evaluate for pneumonia.", {"pneumonia": U}),
    ("Question of pneumonia.", {"pneumonia": U}),
    ("Question prominent hilar lymph nodes.", {"nodes": U}),
    ("Findings could represent atelectasis or pneumonia.", {"atelectasis": U, "pneumonia": U}),
    ("This may represent atelectasis vs early developing infiltrate.", {"atelectasis": U, "infiltrate": U}),
    ("Right middle lobe atelectasis vs pneumonia.", {"atelectasis": U, "pneumonia": U}),
    ("Viral vs. reactive airway disease.", {"viral": U, "reactive": U}),
    ("Possible right lower lobe pneumonia.", {"pneumonia": U}),
    ("Findings most consistent with right lower lobe round pneumonia.", {"pneumonia": U}),
    ("Air space disease at the right base which likely represents pneumonia.", {"disease": A, "pneumonia": U}),
    ("A small focus of bacterial pneumonia in the right upper lobe cannot be excluded.", {"pneumonia": U}),
    ("Cannot exclude a small pleural effusion.", {"effusion": U}),
    ("Pneumonia?", {"pneumonia": U}),
    ("Suspect possible hilar adenopathy.", {"adenopathy": U}),
    ("Findings suggestive of pneumonia.", {"pneumonia": U}),
    ("Mild bladder wall thickening raises the question of cystitis.", {"thickening": A, "cystitis": U}),
    ("It is uncertain whether these are tiny calculi.", {"calculi": U}),
    # affirmed
    ("Left lower lobe pneumonia.", {"pneumonia": A}),
    ("Normal chest x-ray.", {"normal": A, "chest": A, "ray": A}),
    ("History of vesicoureteral reflux.", {"reflux": A}),
    # pseudo-negations
    ("No change in mild bilateral pyelocaliectasis.", {"pyelocaliectasis": A}),
    ("No increase in hydronephrosis.", {"hydronephrosis": A}),
    ("No interval change in the appearance of the kidneys.", {"kidneys": A}),
    ("Not only atelectasis but also pneumonia.", {"atelectasis": A, "pneumonia": A}),
    ("Gram negative rods.", {"rods": A}),
    ("Small opacity in the superior segment which was not seen on prior studies.", {"opacity": A}),
    ("Right lobe pneumonia which has either not resolved or is recurrent.", {"pneumonia": A}),
    # embedded phrases stay inside the negation
    ("No findings to suggest croup.", {"croup": N}),
    ("No focal consolidation to suggest bacterial pneumonia.", {"pneumonia": N}),
    # scope termination
    ("No pneumonia but there is atelectasis.", {"pneumonia": N, "atelectasis": A}),
    ("No effusion; mild atelectasis.", {"effusion": N, "atelectasis": A}),
    ("No effusion, however, mild atelectasis.", {"effusion": N, "atelectasis": A}),
    ("Mild peribronchial thickening but no focal pneumonia.", {"thickening": A, "pneumonia": N}),
    ("Recurrent urinary tract infection, despite negative previous workup.", {"infection": A}),
    ("No pneumonia. Likely chronic changes.", {"pneumonia": N, "changes": U}),
    ("Possible atelectasis without pneumonia.", {"atelectasis": U, "pneumonia": N}),
    ("No focal pneumonia, possible atelectasis.", {"pneumonia": N, "atelectasis": U}),
    # sentence splitting around abbreviations and decimals
    ("Discussed with Dr. Smith, no pneumonia.", {"smith": A, "pneumonia": N}),
    ("1.5 cm calculus without hydronephrosis.", {"calculus": A, "hydronephrosis": N}),
]  # fmt: skip


@pytest.mark.parametrize("text, expected", CASES, ids=[c[0][:40] for c in CASES])
def test_statuses(text: str, expected: dict[str, str]) -> None:
    got = {word: status_of(text, word) for word in expected}
    assert got == expected


def test_case_count() -> None:
    assert len(CASES) >= 30
    statuses = {s for _, expected in CASES for s in expected.values()}
    assert statuses == {N, U, A}


def test_two_mentions_in_two_sentences() -> None:
    text = "Fever, evaluate for pneumonia. No focal pneumonia. Left lower lobe pneumonia."
    assert [status_of(text, "pneumonia", k) for k in range(3)] == [U, N, A]


def test_window_is_bounded() -> None:
    text = "No one two three four five six seven."
    assert status_of(text, "six") == N and status_of(text, "seven") == A
    assert status_of(text, "three", window=3) == N and status_of(text, "four", window=3) == A
    backward = "Zero one two three four five six seven cannot be excluded."
    assert status_of(backward, "two") == U and status_of(backward, "one") == A
    with pytest.raises(ValueError, match="Expected `window` >= 1, got 0"):
        annotate("No pneumonia.", window=0)


def test_trigger_words_are_marked_and_not_in_scope() -> None:
    tokens = annotate("No evidence of pneumonia, but possible atelectasis.")
    roles = {t.text: (t.status, t.trigger) for t in tokens}
    assert roles["No"] == (A, "pre_negation") and roles["evidence"] == (A, "pre_negation")
    assert roles["but"] == (A, "termination")
    assert roles["possible"] == (A, "pre_uncertainty")
    assert roles["pneumonia"] == (N, None) and roles["atelectasis"] == (U, None)


def test_token_is_a_named_tuple_with_offsets() -> None:
    text = "  No focal\npneumonia.  "
    tokens = annotate(text)
    assert tokens == [
        Token("No", 2, 4, A, "pre_negation"),
        Token("focal", 5, 10, N),
        Token("pneumonia", 11, 20, N),
    ]


def test_trigger_lists_are_disjoint_and_lower_case() -> None:
    lists = [negation.PRE_NEGATION, negation.POST_NEGATION, negation.TWO_WAY_NEGATION,
             negation.PRE_UNCERTAINTY, negation.POST_UNCERTAINTY, negation.TWO_WAY_UNCERTAINTY,
             negation.PSEUDO, negation.EMBEDDED, negation.TERMINATION]  # fmt: skip
    seen: set[str] = set()
    for phrases in lists:
        for phrase in phrases:
            assert phrase == phrase.lower() and phrase not in seen, phrase
            seen.add(phrase)


# --- sentences and tokens -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, sentences",
    [
        ("Seen by Dr. Smith. No pneumonia.", ["Seen by Dr. Smith.", "No pneumonia."]),
        ("Calculus of 1.5 cm. No hydronephrosis.", ["Calculus of 1.5 cm.", "No hydronephrosis."]),
        ("Viral vs. reactive airways. Clear.", ["Viral vs. reactive airways.", "Clear."]),
        ("Transplant on Jan. 2, now cough.", ["Transplant on Jan. 2, now cough."]),
        ("1. No focal pneumonia. 2. Viral changes.", ["1.", "No focal pneumonia.", "2.", "Viral changes."]),
        ("Pneumonia? Clear lungs", ["Pneumonia?", "Clear lungs"]),
        ("Fever of 104?F today.", ["Fever of 104?F today."]),
        ("Abdomen: Normal. Kidneys: normal; no mass.", ["Abdomen:", "Normal.", "Kidneys:", "normal;", "no mass."]),
        ("e.g. a list, i.e. this", ["e.g. a list, i.e. this"]),
        ("", []),
        ("   ", []),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert [text[s:e] for s, e in split_sentences(text)] == sentences


def test_word_spans() -> None:
    text = "Chest x-ray: r/o pneumonia? Patient's 104?F"
    assert [text[s:e] for s, e in word_spans(text)] == [
        "Chest", "x", "ray", "r", "o", "pneumonia", "?", "Patient", "s", "104", "F"
    ]  # fmt: skip


_FRAGMENTS = [
    "No", "focal", "pneumonia", "Dr.", "Smith", "1.5", "cm", "x-ray", "r/o", "vs.", "?", "but",
    "cannot be excluded", "no longer seen", "possible", "café", "Jan.", "2", ",", ";", ":", ".",
    "resolved", "to suggest", "r\u00e9sum\u00e9", "under_score", "(left)", "\u00b0F",
]  # fmt: skip


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_FRAGMENTS), max_size=25),
    st.lists(st.sampled_from([" ", "  ", "\n", "", ". ", "? "]), min_size=25, max_size=25),
)
def test_offsets_point_into_the_text(fragments: list[str], separators: list[str]) -> None:
    text = "".join(f + s for f, s in zip(fragments, separators))
    tokens = annotate(text)
    for token in tokens:
        assert text[token.start : token.end] == token.text
    assert all(a.end <= b.start for a, b in zip(tokens, tokens[1:]))
    # the words are exactly the text's runs of letters/digits
    assert [t.text for t in tokens if t.text != "?"] == re.findall(r"[^\W_]+", text)
    marked = mark_scopes(text).split()
    assert [re.sub(r"^(neg|unc)_", "", w) for w in marked] == [w.lower() for w in re.findall(r"[^\W_]+", text)]


def test_mark_scopes() -> None:
    text = "Cough. Rule out pneumonia. No focal consolidation, but mild atelectasis. Pneumonia?"
    assert mark_scopes(text) == (
        "cough rule out unc_pneumonia no neg_focal neg_consolidation but mild atelectasis unc_pneumonia"
    )
    assert mark_scopes("") == ""
    with pytest.raises(TypeError, match="Expected `text` to be a str, got NoneType"):
        mark_scopes(None)  # type: ignore[arg-type]


def test_docstring_examples() -> None:
    import doctest

    import comorbid.text
    import comorbid.text.preprocess
    import comorbid.text.sections
    import comorbid.text.tokens

    for module in [comorbid.text, negation, comorbid.text.tokens, comorbid.text.sections, comorbid.text.preprocess]:
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__
