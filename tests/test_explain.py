"""Explanations cite spans that are really in the note, for every suggested code."""

import json

import numpy as np
import pytest

from comorbid.cli import main
from comorbid.data import MultiLabelDataset, load_dataset
from comorbid.explain import explain, occlusion_units
from comorbid.model import MultiLabelModel, train_config_for
from conftest import WORDS
from test_model import tiny_dataset

CAML_OPTIONS = {"embedding_dim": 16, "filters": 16, "kernel_size": 3}


def assert_spans_are_in_the_notes(explained, texts, decoded):
    """Every cited span is non-empty text of its note; every suggested code of a note that has
    words cites at least one span; the codes are exactly the decoded ones."""
    assert len(explained) == len(texts)
    for note, text, row in zip(explained, texts, decoded):
        assert note.text == text
        assert [c.code for c in note.codes] == [c.code for c in note.codes if c.code]  # no empty code
        assert len(note.codes) == int(row.sum())
        for code in note.codes:
            assert 0.0 <= code.probability <= 1.0
            if any(ch.isalnum() for ch in text):
                assert code.evidence, f"{code.code} cites nothing in {text!r}"
            for span in code.evidence:
                assert span.end > span.start
                assert text[span.start : span.end] == span.text and span.text.strip()


def test_occlusion_units_are_words_and_multiword_phrases():
    text = "Cough and fever, no pneumonia. Wheezing?"
    units = [(text[s:e], kind) for s, e, kind in occlusion_units(text)]
    assert ("Cough", "word") in units and ("?", "word") not in units
    assert ("Cough and fever", "phrase") in units and ("no pneumonia", "phrase") in units
    assert ("Wheezing", "phrase") not in units  # a one-word phrase is the word


@pytest.fixture(scope="module")
def tfidf_model():
    return MultiLabelModel("independent").fit(tiny_dataset(80))


def test_an_obvious_note_cites_its_word():
    texts = ["Cough.", "Fever.", "Cough and fever.", "Normal chest.", "Fever, no cough.", "Clear lungs."] * 5
    labels = np.array([["Cough" in t and "no cough" not in t, "Fever" in t] for t in texts], dtype=np.int8)
    data = MultiLabelDataset([str(i) for i in range(len(texts))], texts, labels, ["cough", "fever"])
    (note,) = explain(MultiLabelModel("independent").fit(data), ["Cough."])
    assert [c.code for c in note.codes] == ["cough"]
    best = note.codes[0].evidence[0]
    assert (best.start, best.end, best.text, best.kind) == (0, 5, "Cough", "word") and best.weight > 0.1


@pytest.mark.parametrize("model_name", ["independent", "chain"])
def test_synthetic_spans_are_in_the_notes(model_name):
    data = tiny_dataset(80)
    model = MultiLabelModel(model_name).fit(data)
    texts = data.inputs[:25] + ["", "   ", "Fever, cough.\n\nPneumonia!", "fever fever fever"]
    explained = explain(model, texts, decode="subset", top_words=2)
    assert_spans_are_in_the_notes(explained, texts, model.predict(texts, ["subset"])["subset"])
    fever = [c for n in explained for c in n.codes if c.code == "fever"]
    # the cited words (or the phrase holding them) are the fever words, however redundant
    assert fever and all(any(set(e.text.lower().split()) & set(WORDS["fever"].split()) for e in c.evidence)
                         for c in fever)


def test_caml_attention_and_occlusion_spans_are_in_the_notes():
    data = tiny_dataset(80)
    model = MultiLabelModel("independent", encoder="caml", encoder_options=CAML_OPTIONS,
                            train=train_config_for("caml", epochs=15, learning_rate=1e-2)).fit(data)
    texts = data.inputs[:20] + ["Cough."]
    decoded = model.predict(texts, ["hamming"])["hamming"]
    for method in ("attention", "occlusion"):
        explained = explain(model, texts, method=method)
        assert_spans_are_in_the_notes(explained, texts, decoded)
        kinds = {e.kind for n in explained for c in n.codes for e in c.evidence}
        assert kinds <= ({"attention"} if method == "attention" else {"word", "phrase"})
    attention = explain(model, texts, method="attention", top_words=3)
    for note in attention:  # attention windows cited for one code do not overlap
        for code in note.codes:
            spans = sorted((e.start, e.end) for e in code.evidence)
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_explain_rejects_bad_requests(tfidf_model):
    with pytest.raises(ValueError, match="method"):
        explain(tfidf_model, ["x"], method="saliency")
    with pytest.raises(ValueError, match="caml"):
        explain(tfidf_model, ["x"], method="attention")
    with pytest.raises(ValueError, match="ids"):
        explain(tfidf_model, ["x"], ids=["a", "b"])


def test_cmc_explanations_cite_the_reports(cmc_path):
    data = load_dataset(str(cmc_path))
    train, test = data.subset(np.arange(0, 700)), data.subset(np.arange(700, 760))
    model = MultiLabelModel("independent").fit(train)
    explained = explain(model, test.inputs, test.ids)
    assert_spans_are_in_the_notes(explained, test.inputs, model.predict(test, ["hamming"])["hamming"])
    cough = [c for n in explained for c in n.codes if c.code == "786.2" and "cough" in n.text.lower()]
    assert len(cough) >= 3 and all(c.description == "Cough" for c in cough)
    # where the report says "cough", the cough code cites it (all 5 of them on this split)
    assert all(any("cough" in e.text.lower() for e in c.evidence) for c in cough)
    (note,) = explain(model, ["Cough."])
    assert "786.2" in [c.code for c in note.codes]
    assert note.codes[[c.code for c in note.codes].index("786.2")].evidence[0].text == "Cough"


def test_cli_predict_explain_writes_one_json_line_per_row(tiny_csv, tmp_path, capsys):
    model_dir, out, jsonl = tmp_path / "m", tmp_path / "p.csv", tmp_path / "e.jsonl"
    assert main(["train", str(tiny_csv), "--out", str(model_dir)]) == 0
    assert main(["predict", str(model_dir), str(tiny_csv), "--out", str(out), "--explain", str(jsonl)]) == 0
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    rows = out.read_text().splitlines()[1:]
    assert len(lines) == len(rows) == 60
    for line, row in zip(lines, rows):
        assert row.split(",")[0] == line["id"]
        assert set(filter(None, row.split(",")[1].split(";"))) == set(line["labels"])
        assert set(line) == {"id", "text", "labels", "codes"}
        for code in line["codes"]:
            assert set(code) == {"code", "description", "probability", "evidence"}
            for e in code["evidence"]:
                assert set(e) == {"start", "end", "text", "weight", "kind"}
                assert line["text"][e["start"] : e["end"]] == e["text"]
    capsys.readouterr()
    assert main(["predict", str(model_dir), str(tiny_csv), "--out", str(out), "--explain", str(jsonl),
                 "--explain-method", "attention"]) == 2
    assert "caml" in capsys.readouterr().err


def test_cli_predicts_a_file_without_codes(tiny_csv, data_dir, tmp_path, capsys):
    test_file = data_dir / "cmc2007" / "2007ChallengeTestDataNoCodes.xml"
    if not test_file.is_file():
        pytest.skip("CMC 2007 test file not found")
    assert load_dataset(str(test_file)).n_labels == 0
    model_dir, out = tmp_path / "m", tmp_path / "p.csv"
    assert main(["train", str(tiny_csv), "--out", str(model_dir)]) == 0
    assert main(["predict", str(model_dir), str(test_file), "--out", str(out)]) == 0
    rows = out.read_text().splitlines()
    assert rows[0] == "id,labels" and len(rows) == 977


# ---------------------------------------------------------------------------- the linear method
@pytest.fixture(scope="module")
def cmc_split():
    from conftest import shared_data

    root = shared_data()
    path = None if root is None else root / "cmc2007" / "2007ChallengeTrainData.xml"
    if path is None or not path.is_file():
        pytest.skip("CMC 2007 not found")
    data = load_dataset(str(path))
    return data.subset(np.arange(0, 700)), data.subset(np.arange(700, 760))


@pytest.fixture(scope="module")
def cmc_default_model(cmc_split):
    return MultiLabelModel().fit(cmc_split[0])  # the default coder: chain, clinical, non-empty


@pytest.mark.parametrize("encoder", ["clinical", "tfidf"])
def test_every_feature_of_a_cmc_note_is_traced_to_its_words(cmc_split, encoder):
    """The traced features are exactly the note's (else the note falls back to occlusion), each
    shared out completely, so a code's logit is the sum of its tokens' shares plus the bias."""
    from comorbid.encoders import get_encoder
    from comorbid.encoders.spans import token_feature_shares

    train, test = cmc_split
    model = MultiLabelModel("independent", encoder=encoder, nonempty=False).fit(train)
    assert get_encoder(encoder, True).name == model.encoder_.name
    features = model.encoder_.featurize(test.inputs)
    weight = model.head_.linear.weight.detach().numpy().astype(np.float64)
    logits = model.head_.linear(model.encoder_(features)).detach().numpy()
    for n, text in enumerate(test.inputs):
        spans, shares = token_feature_shares(model.encoder_, text, features[n])
        assert all(text[s:e].strip() for s, e in spans)
        present = features[n].indices
        np.testing.assert_allclose(np.asarray(shares.sum(0)).ravel()[present], 1.0)
        per_token = shares.multiply(features[n]).tocsr() @ weight.T
        bias = model.head_.linear.bias.detach().numpy()
        np.testing.assert_allclose(per_token.sum(0) + bias, logits[n], rtol=1e-4, atol=1e-4)


def test_default_method_is_linear_for_the_default_coder_and_occlusion_otherwise(cmc_default_model):
    from comorbid.explain import resolve_method

    assert resolve_method(cmc_default_model, "auto") == "linear"
    caml = MultiLabelModel("independent", encoder="caml", encoder_options=CAML_OPTIONS,
                           train=train_config_for("caml", epochs=1)).fit(tiny_dataset(30))
    assert resolve_method(caml, "auto") == "occlusion"
    with pytest.raises(ValueError, match="linear"):
        resolve_method(caml, "linear")
    for name in ("mixture", "powerset", "chain-ensemble"):  # no per-code linear logits
        assert resolve_method(MultiLabelModel(name).fit(tiny_dataset(30)), "auto") == "occlusion", name


def _without(text: str, start: int, end: int) -> str:
    return text[:start] + " " + text[end:]


def test_linear_evidence_is_faithful_on_cmc_notes(cmc_split, cmc_default_model):
    """Deleting a code's best cited word lowers the code's probability (the default chain's
    Monte Carlo marginal) more than deleting a random word of the same note."""
    from comorbid.text import word_spans

    model, (_, test) = cmc_default_model, cmc_split
    explained = explain(model, test.inputs[:30], test.ids[:30], decode="hamming")
    assert_spans_are_in_the_notes(explained, test.inputs[:30], model.predict(test.inputs[:30], ["hamming"])["hamming"])
    rng = np.random.default_rng(0)
    variants, owners = [], []  # (note, code column, is the best word)
    for n, note in enumerate(explained):
        words = [(s, e) for s, e in word_spans(note.text) if note.text[s:e] != "?"]
        for code in note.codes:
            best = next(e for e in code.evidence if e.kind == "word")
            j = model.label_names_.index(code.code)
            variants.append(_without(note.text, best.start, best.end))
            owners.append((n, j, True))
            for k in rng.choice(len(words), size=min(3, len(words)), replace=False):
                variants.append(_without(note.text, *words[k]))
                owners.append((n, j, False))
    base = model.marginals(test.inputs[:30])
    after = model.marginals(variants)
    drops = np.array([base[n, j] - after[v, j] for v, (n, j, _) in enumerate(owners)])
    is_best = np.array([b for _, _, b in owners])
    assert is_best.sum() >= 20
    assert drops[is_best].mean() > drops[~is_best].mean() + 0.2
    # per code: the best word beats the mean random word nearly always
    wins = []
    for n, j in {(n, j) for n, j, _ in owners}:
        mine = [v for v, o in enumerate(owners) if o[:2] == (n, j)]
        wins.append(drops[[v for v in mine if is_best[v]]].max() >= drops[[v for v in mine if not is_best[v]]].mean())
    assert np.mean(wins) >= 0.9


def test_explain_shows_progress_and_matches_explain_batch(tfidf_model):
    from rich.progress import Progress

    from comorbid.explain import explain_batch

    texts = tiny_dataset(20).inputs
    with Progress(disable=True) as progress:
        explained = explain(tfidf_model, texts, progress=progress)
        (task,) = progress.tasks
        assert task.completed == len(texts)
    predicted, marginals = tfidf_model.predict_with_marginals(texts, ["hamming"])
    batch = explain_batch(tfidf_model, texts, [str(i) for i in range(len(texts))], predicted["hamming"], marginals)
    assert [n.to_dict() for n in batch] == [n.to_dict() for n in explained]
