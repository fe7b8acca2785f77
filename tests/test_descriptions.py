"""Code descriptions for rare and never-seen codes: the matcher, the head's blend, the model's
resolution of the option, saving and loading, and the rare-code metrics."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from comorbid import icd
from comorbid.data import MultiLabelDataset
from comorbid.encoders import ClinicalEncoder
from comorbid.encoders.descriptions import DescriptionMatcher
from comorbid.evaluation import rare_code_scores
from comorbid.heads import HEADS
from comorbid.heads.descriptions import DescriptionBlend, split_scores
from comorbid.model import MultiLabelModel, resolve_descriptions

#: ICD-10-CM codes and the words of notes that have them (A23.9 "Brucellosis, unspecified" is
#: a candidate code that no training note has)
WORDS = {"J18.9": "pneumonia in the right lower lobe", "R50.9": "fever for three days",
         "I10": "known essential hypertension"}
UNSEEN = "A23.9"


def coding_dataset(n: int = 60, seed: int = 0, with_unseen_column: bool = True) -> MultiLabelDataset:
    rng = np.random.default_rng(seed)
    names = list(WORDS) + ([UNSEEN] if with_unseen_column else [])
    labels = np.zeros((n, len(names)), dtype=np.int8)
    texts = []
    for i in range(n):
        on = [j for j in range(len(WORDS)) if rng.random() < 0.4] or [int(rng.integers(len(WORDS)))]
        labels[i, on] = 1
        texts.append("patient seen today with " + " and ".join(WORDS[names[j]] for j in on))
    return MultiLabelDataset([f"r{i}" for i in range(n)], texts, labels, names)


def test_describe_labels_falls_back_to_the_nearest_described_ancestor():
    assert icd.describe_labels(["T81.4XX", "J18.9"]) == ["Infection following a procedure",
                                                        "Pneumonia, unspecified organism"]
    assert icd.describe_labels(["fever", "cough", "pneumonia"]) is None
    assert icd.describe_labels(["486", "599.7"])[0] == icd.describe("486", "icd9", long=True)


def test_match_score_is_the_idf_weighted_share_of_description_terms_in_the_note():
    notes = ["acute brucellosis", "brucellosis", "acute pain", "pain"]
    matcher = DescriptionMatcher(["acute brucellosis", ""], clinical=None, char_ngram_range=None).fit(notes)
    terms = matcher.vectorizers["word"].vocabulary_
    assert set(terms) == {"acute", "brucellosis", "acute brucellosis"}
    idf = {t: np.log(5 / (1 + df)) + 1 for t, df in {"acute": 2, "brucellosis": 2, "acute brucellosis": 1}.items()}
    scores = matcher.scores(["brucellosis today", "acute brucellosis", "nothing"]).toarray()
    assert scores[:, 1].tolist() == [0, 0, 0]  # no description: never matches
    np.testing.assert_allclose(scores[:, 0], [idf["brucellosis"] / sum(idf.values()), 1.0, 0.0], rtol=1e-6)


def test_matcher_keeps_each_rows_top_codes_and_restores_from_its_state():
    descriptions = ["fever", "cough", "fever and cough", "pneumonia"]
    notes = ["fever and cough", "pneumonia with fever", "cough"]
    matcher = DescriptionMatcher(descriptions, top=2).fit(notes)
    scores = matcher.scores(notes)
    assert sp.issparse(scores) and scores.shape == (3, 4)
    assert (scores.getnnz(axis=1) <= 2).all()
    full = DescriptionMatcher(descriptions, top=10).fit(notes).scores(notes).toarray()
    kept = scores.toarray()
    for row in range(3):  # what is kept is the row's best
        assert kept[row][kept[row] > 0].min(initial=np.inf) >= np.sort(full[row])[-2] - 1e-7
    restored = DescriptionMatcher.from_state(matcher.state())
    np.testing.assert_array_equal(restored.scores(notes).toarray(), kept)


def test_split_scores_gives_the_bag_of_words_and_dense_scores_for_sparse_and_dense_features():
    x = sp.random(5, 9, density=0.4, format="csr", random_state=0, dtype=np.float32)
    dense = torch.as_tensor(x.toarray())
    from comorbid.encoders.base import to_torch

    words, scores = split_scores(to_torch(x), 3)
    torch.testing.assert_close(words.to_dense(), dense[:, :6])
    torch.testing.assert_close(scores, dense[:, 6:])
    words, scores = split_scores(dense, 3)
    torch.testing.assert_close(words, dense[:, :6])
    with pytest.raises(ValueError, match="description scores"):
        split_scores(dense, 10)


def test_blend_weighs_the_description_by_the_training_count():
    blend = DescriptionBlend(3, strength=1.0)
    blend.prepare(np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0]]))
    torch.testing.assert_close(blend.weights(), torch.tensor([0.25, 0.5, 1.0]))
    unary, scores = torch.tensor([[2.0, 2.0, 2.0]]), torch.tensor([[1.0, 1.0, 1.0]])
    zero_shot = float(blend.scale.detach() + blend.offset.detach())
    expected = torch.tensor([[0.75 * 2 + 0.25 * zero_shot, 0.5 * 2 + 0.5 * zero_shot, zero_shot]])
    torch.testing.assert_close(blend.eval()(unary, scores), expected)
    # in training, a code without a training note sends no gradient to the shared zero-shot model
    blend.train()
    blend(unary, scores)[:, 2].sum().backward()
    assert blend.scale.grad is None or float(blend.scale.grad) == 0.0
    with pytest.raises(ValueError, match="description_strength"):
        DescriptionBlend(2, strength=0)


@pytest.mark.parametrize("model_name", ["independent", "chain"])
def test_a_code_never_seen_in_training_is_suggested_by_its_description(model_name, tmp_path):
    train = coding_dataset()
    fitted = {}
    for descriptions in (True, False):
        model = MultiLabelModel(model_name, head_options={"descriptions": descriptions},
                                train={"max_iterations": 60}).fit(train)
        fitted[descriptions] = model
    notes = ["patient with fever, brucellosis suspected after raw milk", "patient with fever for three days"]
    unseen = train.label_names.index(UNSEEN)
    with_descriptions = fitted[True].marginals(notes)[:, unseen]
    without = fitted[False].marginals(notes)[:, unseen]
    assert with_descriptions[0] > with_descriptions[1] + 0.3
    assert abs(without[0] - without[1]) < 1e-3  # no description: nothing tells the notes apart
    # seen codes are still scored by their own weights
    assert fitted[True].marginals(["pneumonia in the right lower lobe"])[0, 0] > 0.5
    fitted[True].save(tmp_path / "m")
    loaded = MultiLabelModel.load(tmp_path / "m")
    assert loaded.head_.options["descriptions"] is True
    np.testing.assert_array_equal(loaded.marginals(notes), fitted[True].marginals(notes))


def test_descriptions_option_resolution():
    names = list(WORDS)
    encoder = ClinicalEncoder()
    assert resolve_descriptions(True, HEADS["independent"], encoder, names) == icd.describe_labels(names)
    assert resolve_descriptions(False, HEADS["independent"], encoder, names) is None
    # auto: only where it applies
    assert resolve_descriptions("auto", HEADS["mixture"], encoder, names) in (None, icd.describe_labels(names))
    assert resolve_descriptions("auto", HEADS["independent"], encoder, ["fever", "cough"]) is None
    with pytest.raises(ValueError, match="not ICD"):
        resolve_descriptions(True, HEADS["independent"], encoder, ["fever", "cough"])
    with pytest.raises(ValueError, match="mixture model does not take them"):
        resolve_descriptions(True, HEADS["mixture"], encoder, names)
    with pytest.raises(ValueError, match="hidden"):
        resolve_descriptions(True, HEADS["chain"], ClinicalEncoder(hidden=8), names)
    with pytest.raises(ValueError, match="True, False or 'auto'"):
        resolve_descriptions("yes", HEADS["chain"], encoder, names)


def test_a_model_without_icd_labels_is_unchanged_by_the_auto_option():
    data = coding_dataset(with_unseen_column=False)
    data = MultiLabelDataset(data.ids, data.inputs, data.labels, ["pneumonia", "fever", "hypertension"])
    model = MultiLabelModel("independent", train={"max_iterations": 5}).fit(data)
    assert "descriptions" not in model.head_.options and model.encoder_.description_columns == 0


def brute_rare_scores(y, scores, pred, counts, max_count=2):
    rare = counts <= max_count
    tp = (y[:, rare] & pred[:, rare]).sum()
    f1 = 2 * tp / (pred[:, rare].sum() + y[:, rare].sum())
    aps = []
    for row in range(len(y)):
        gold = np.flatnonzero(y[row, rare])
        if not len(gold):
            continue
        order = np.argsort(-scores[row, rare], kind="stable")
        ranks = np.flatnonzero(np.isin(order, gold)) + 1
        aps.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    unseen = counts == 0
    top = np.argsort(-scores, axis=1, kind="stable")[:, :15]
    in_top = np.zeros_like(y)
    np.put_along_axis(in_top, top, True, axis=1)
    total = y[:, unseen].sum()
    return {"rare_micro_f1": f1, "rare_map": np.mean(aps),
            "unseen_recall": (y[:, unseen] & pred[:, unseen]).sum() / total,
            "unseen_recall@15": (y[:, unseen] & in_top[:, unseen]).sum() / total}


def test_rare_code_scores_match_a_brute_force_count():
    rng = np.random.default_rng(3)
    y = rng.random((40, 30)) < 0.15
    pred = rng.random((40, 30)) < 0.15
    scores = rng.random((40, 30))
    counts = rng.integers(0, 5, 30)
    got = rare_code_scores(y.astype(np.int8), scores, pred.astype(np.int8), counts)
    expected = brute_rare_scores(y, scores, pred, counts)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value), name


def test_gold_codes_unknown_to_the_model_count_as_missed_never_seen_codes():
    y = np.array([[1, 0], [0, 1]], dtype=np.int8)
    pred = y.copy()
    unknown = sp.csr_matrix(np.array([[1], [0]], dtype=np.int8))
    got = rare_code_scores(y, np.array([[0.9, 0.1], [0.2, 0.8]]), pred, np.array([1, 10]), unknown)
    assert got["unseen_recall"] == 0.0 and got["unseen_recall@15"] == 0.0
    assert got["rare_micro_f1"] == pytest.approx(2 * 1 / (1 + 2))  # 1 found of 2 rare gold, 1 predicted
    assert got["rare_map"] == pytest.approx(0.5)  # row 1: its rare gold code first, the unknown one never


def test_cross_validation_reports_rare_code_metrics_per_decoder():
    from comorbid.evaluation import RARE_METRICS, cross_validate

    data = coding_dataset(40)
    result = cross_validate(data, lambda: MultiLabelModel("independent", train={"max_iterations": 10}),
                            ["hamming", "top-k=2"], n_folds=2)
    assert set(result["rare"]) == {"hamming", "top-k=2"}
    for scores in result["rare"].values():
        assert set(scores) == set(RARE_METRICS)
        # A23.9 has no training note in either fold, and no gold occurrence: its recall is undefined
        assert np.isnan(scores["unseen_recall"])
