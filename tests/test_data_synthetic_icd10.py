"""The synthetic ICD-10-CM coding set of the scale benchmark (``synthetic_icd10_set``).

Every statistical check runs on fixed seeds, so none fails by chance; the thresholds sit well
inside what seeds 0-2 give at 2,000 x 1,000 (measured: top 1% of codes carry 0.36-0.41 of assignments, 0.54-0.59
of codes are seen at most twice).
"""

import numpy as np
import pytest

from comorbid.data import MultiLabelDataset, synthetic_icd10_set
from comorbid.icd import is_billable


@pytest.fixture(scope="module")
def coded():
    return synthetic_icd10_set(n_notes=2000, n_codes=1000, seed=0)


def _frequencies(data: MultiLabelDataset) -> np.ndarray:
    return np.sort(data.labels.sum(axis=0))[::-1]


def test_same_seed_same_data_and_other_seed_differs():
    first = synthetic_icd10_set(n_notes=300, n_codes=200, seed=3)
    again = synthetic_icd10_set(n_notes=300, n_codes=200, seed=3)
    other = synthetic_icd10_set(n_notes=300, n_codes=200, seed=4)
    assert first.inputs == again.inputs and first.label_names == again.label_names
    np.testing.assert_array_equal(first.labels, again.labels)
    assert first.extras["negated_codes"] == again.extras["negated_codes"]
    assert first.inputs != other.inputs and first.label_names != other.label_names


def test_shapes_ids_and_every_note_coded(coded):
    assert len(coded) == 2000 and coded.n_labels == 1000 and coded.is_text
    assert coded.labels.dtype == np.int8 and coded.labels.shape == (2000, 1000)
    assert coded.label_names == sorted(set(coded.label_names))
    assert len(set(coded.ids)) == 2000
    assert coded.labels.sum(axis=1).min() >= 1
    assert coded.extras["profiles"].shape == (2000, 2)


def test_codes_are_billable_icd10_cm(coded):
    bad = [code for code in coded.label_names if not is_billable(code, "icd10")]
    assert bad == []
    # chapters are mixed: not only injuries (S/T), which make up most billable codes
    letters = {code[0] for code in coded.label_names}
    assert len(letters) >= 18
    assert np.mean([code[0] in "ST" for code in coded.label_names]) < 0.3


def test_every_note_has_300_to_1500_words(coded):
    words = np.array([len(text.split()) for text in coded.inputs])
    assert words.min() >= 300 and words.max() <= 1500
    assert 500 <= np.median(words) <= 800  # lengths vary, not pinned to a bound
    assert np.mean(words == 300) < 0.2


def test_code_frequencies_have_a_zipf_head_and_long_tail(coded):
    counts = _frequencies(coded)
    share_of_top_1_percent = counts[:10].sum() / counts.sum()
    assert 0.25 <= share_of_top_1_percent <= 0.6
    assert np.mean(counts <= 2) >= 0.4
    assert np.mean((counts >= 1) & (counts <= 2)) >= 0.25  # seen once or twice, not only unseen
    assert counts[0] >= 200  # a few codes are common


def test_notes_of_a_profile_share_codes(coded):
    """Comorbidity: two notes of the same profile share more codes than two random notes
    (leaving out the 10 most frequent codes, which most notes share)."""
    profile = coded.extras["profiles"][:, 0]
    common = np.bincount(profile).argmax()
    tail = np.argsort(coded.labels.sum(axis=0))[:-10]
    same = coded.labels[profile == common][:, tail].astype(np.float64)
    rest = coded.labels[profile != common][:, tail].astype(np.float64)
    overlap_same = (same @ same.T)[~np.eye(len(same), dtype=bool)].mean()
    overlap_rest = (same @ rest.T).mean()
    assert overlap_same > 2 * overlap_rest


def test_negated_mentions_are_of_codes_not_assigned(coded):
    column = {code: j for j, code in enumerate(coded.label_names)}
    negated = coded.extras["negated_codes"]
    assert np.mean([len(codes) > 0 for codes in negated]) > 0.5
    cues = ("no evidence of", "denies", "negative for", "no signs of", "ruled out")
    for row, codes in enumerate(negated):
        text = coded.inputs[row].lower()
        for code in codes:
            assert coded.labels[row, column[code]] == 0, f"negated {code} is coded in row {row}"
        if codes:
            assert any(cue in text for cue in cues)


def test_symptoms_explained_by_a_diagnosis_are_mentioned_not_coded(coded):
    column = {code: j for j, code in enumerate(coded.label_names)}
    uncoded = coded.extras["uncoded_mentions"]
    assert sum(len(codes) for codes in uncoded) >= 10
    for row, codes in enumerate(uncoded):
        for code in codes:
            assert code.startswith("R")  # chapter 18: symptoms and signs
            assert coded.labels[row, column[code]] == 0
    # elsewhere the same symptoms are coded
    symptoms = {code for codes in uncoded for code in codes}
    assert sum(coded.labels[:, column[code]].sum() for code in symptoms) > 0


def test_subset_keeps_extras_per_row(coded):
    part = coded.subset([5, 7])
    assert part.extras["negated_codes"] == [coded.extras["negated_codes"][5], coded.extras["negated_codes"][7]]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"n_codes": 10**6}, "n_codes <="),
        ({"n_codes": 1}, "n_codes >= 2"),
        ({"max_words": 800}, "max_words >="),
        ({"codes_per_note": 0.5}, "codes_per_note"),
        ({"profile_share": 1.5}, "profile_share"),
    ],
)
def test_bad_arguments_name_the_argument(options, message):
    with pytest.raises(ValueError, match=message):
        synthetic_icd10_set(**{"n_notes": 10, "n_codes": 50, **options})
