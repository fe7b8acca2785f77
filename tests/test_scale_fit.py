"""The fit path at the size of real coding: sparse features end to end, a hidden layer when a
linear head would be too large, Adam instead of L-BFGS when L-BFGS's state would not fit, labels
converted one batch at a time, and a held-out stage of one split beyond a size."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import comorbid.heldout as heldout_module
import comorbid.training as training_module
from comorbid.data import MultiLabelDataset
from comorbid.encoders import ClinicalEncoder, TfidfEncoder
from comorbid.encoders.base import to_torch
from comorbid.heads.base import Linear
from comorbid.heldout import held_out_predictions
from comorbid.model import MultiLabelModel
from conftest import tiny_text_rows
from test_heldout import RecordingModel
from test_model import tiny_dataset


def text_dataset(n: int = 60) -> MultiLabelDataset:
    rows = tiny_text_rows(n)
    names = ["fever", "cough", "pneumonia"]
    labels = np.array([[name in row_labels for name in names] for _, _, row_labels in rows], dtype=np.int8)
    return MultiLabelDataset([r[0] for r in rows], [r[1] for r in rows], labels, names)


def test_sparse_linear_equals_the_dense_layer_and_its_gradient():
    x = sp.random(7, 40, density=0.2, format="csr", random_state=1, dtype=np.float32)
    layer = Linear(40, 5)
    dense = torch.as_tensor(x.toarray())
    expected = layer(dense)
    expected.square().sum().backward()
    dense_grad = layer.weight.grad.clone()
    layer.zero_grad()
    out = layer(to_torch(x))
    out.square().sum().backward()
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(layer.weight.grad, dense_grad)


def test_bag_of_words_features_stay_sparse_and_need_no_hidden_layer_for_few_codes():
    data = text_dataset()
    encoder = ClinicalEncoder(min_df=1).fit(data.inputs, data.labels)
    features = encoder.featurize(data.inputs)
    assert sp.issparse(features)
    assert encoder.hidden_layer is None and encoder.output_dim == encoder.input_dim == features.shape[1]
    assert encoder(features).layout == torch.sparse_csr
    assert encoder.training_defaults() == ClinicalEncoder.train_defaults


def test_max_weights_keeps_the_most_frequent_words_first(monkeypatch):
    data = text_dataset()
    full = ClinicalEncoder(min_df=1).fit(data.inputs, data.labels)
    n_words = len(full.vectorizers["word"].vocabulary_)
    assert "char" in full.vectorizers and full.input_dim > n_words
    # a budget of 3 labels x (n_words + 5) weights: every word and the 5 most frequent char n-grams
    capped = ClinicalEncoder(min_df=1, max_weights=3 * (n_words + 5)).fit(data.inputs, data.labels)
    assert capped.vectorizers["word"].vocabulary_ == full.vectorizers["word"].vocabulary_
    assert len(capped.vectorizers["char"].vocabulary_) == 5 and capped.input_dim == n_words + 5
    # a budget below the words: the most frequent words only, no character n-grams
    words = ClinicalEncoder(min_df=1, max_weights=3 * 4).fit(data.inputs, data.labels)
    assert list(words.vectorizers) == ["word"] and words.input_dim == 4
    assert words.featurize(data.inputs).shape == (len(data), 4)
    # without labels (or with max_weights=None) nothing is cut
    assert ClinicalEncoder(min_df=1, max_weights=12).fit(data.inputs).input_dim == full.input_dim
    assert ClinicalEncoder(min_df=1, max_weights=None).fit(data.inputs, data.labels).input_dim == full.input_dim
    assert words.training_defaults() == ClinicalEncoder.train_defaults
    with pytest.raises(ValueError, match="hidden"):
        TfidfEncoder(hidden=-3)
    with pytest.raises(ValueError, match="max_weights"):
        TfidfEncoder(max_weights=0)


def test_a_capped_vocabulary_saves_and_loads_exactly(tmp_path):
    data = text_dataset()
    model = MultiLabelModel("chain", encoder_options={"min_df": 1, "max_weights": 3 * 8}).fit(data)
    assert model.encoder_.input_dim == 8 and list(model.encoder_.vectorizers) == ["word"]
    model.save(tmp_path / "m")
    loaded = MultiLabelModel.load(tmp_path / "m")
    assert list(loaded.encoder_.vectorizers) == ["word"]
    np.testing.assert_array_equal(loaded.marginals(data), model.marginals(data))


def test_a_hidden_layer_gives_dense_features_and_trains_by_adam():
    data = text_dataset()
    encoder = TfidfEncoder(hidden=16).fit(data.inputs, data.labels)
    h = encoder.eval()(encoder.featurize(data.inputs[:4]))
    assert h.shape == (4, 16) and h.layout == torch.strided and (h >= 0).all()
    assert encoder.training_defaults()["optimizer"] == "adam"
    assert TfidfEncoder(hidden=0).fit(data.inputs, data.labels).hidden_layer is None


def test_a_model_with_a_hidden_layer_trains_saves_and_loads_exactly(tmp_path):
    data = text_dataset(80)
    model = MultiLabelModel("independent", encoder="tfidf", encoder_options={"hidden": 32},
                            train={"epochs": 40, "patience": 40, "learning_rate": 1e-2}).fit(data)
    assert model.train_config_.optimizer == "adam" and model.train_config_.batch_size == 32  # the hidden defaults
    assert model.history_["epochs_run"] >= 1
    predictions = model.predict(data, ["hamming"])["hamming"]
    assert (predictions == data.labels).mean() > 0.9  # the words decide the labels
    model.save(tmp_path / "m")
    loaded = MultiLabelModel.load(tmp_path / "m")
    assert loaded.encoder_.hidden_layer is not None and loaded.encoder_.output_dim == 32
    np.testing.assert_array_equal(loaded.marginals(data), model.marginals(data))


def test_fit_leaves_the_global_random_state_alone():
    data = text_dataset()
    state = torch.random.get_rng_state()
    MultiLabelModel("independent", encoder="tfidf", encoder_options={"hidden": 8}, train={"epochs": 2}).fit(data)
    assert torch.equal(state, torch.random.get_rng_state())


def test_lbfgs_is_chosen_only_while_its_state_fits(monkeypatch):
    data = text_dataset()
    small = MultiLabelModel("independent", encoder="tfidf").fit(data)
    assert small.history_.get("optimizer") == "lbfgs"
    monkeypatch.setattr(training_module, "LBFGS_MAX_BYTES", 1000)
    large = MultiLabelModel("independent", encoder="tfidf", train={"epochs": 3}).fit(data)
    assert large.history_.get("optimizer") != "lbfgs" and "epochs_run" in large.history_


def test_training_never_converts_all_labels_at_once(monkeypatch):
    data = text_dataset()
    seen = []
    original = training_module._labels

    def recording(labels, rows, dtype):
        seen.append(len(rows))
        return original(labels, rows, dtype)

    monkeypatch.setattr(training_module, "_labels", recording)
    MultiLabelModel("independent", encoder="tfidf", encoder_options={"hidden": 8},
                    train={"epochs": 2, "batch_size": 16, "refit": False}).fit(data)
    assert seen and max(seen) <= 16


def test_the_heldout_stage_holds_out_one_fold_beyond_its_size_limit(monkeypatch):
    data = tiny_dataset(40)
    everything = held_out_predictions(lambda part, _: RecordingModel(part), data, n_folds=4, seed=1)
    monkeypatch.setattr(heldout_module, "ALL_FOLDS_MAX_CELLS", 10)
    one = held_out_predictions(lambda part, _: RecordingModel(part), data, n_folds=4, seed=1)
    assert len(one.folds) == 1 and len(one.rows) == len(one.folds[0][1]) < len(data)
    np.testing.assert_array_equal(one.labels, data.labels[one.rows])
    model, rows = one.folds[0]
    assert not model.ids & {data.ids[i] for i in rows}
    np.testing.assert_array_equal(one.marginals, everything.marginals[one.rows])


def test_thresholds_and_calibration_work_on_one_heldout_fold(monkeypatch):
    data = text_dataset(60)
    monkeypatch.setattr(heldout_module, "ALL_FOLDS_MAX_CELLS", 10)
    model = MultiLabelModel("independent", encoder="tfidf", calibrate=True).fit(data, decoders=["micro-f1"])
    assert model.calibration_["rows"] < len(data)
    assert model.predict(data, ["micro-f1"])["micro-f1"].shape == data.labels.shape


# ------------------------------------------------------------------ issue 13: the default model at scale
def test_fit_featurize_gives_the_features_that_fit_then_featurize_give():
    data = text_dataset()
    for encoder_cls, options in ((ClinicalEncoder, {"min_df": 1}), (TfidfEncoder, {}),
                                 (ClinicalEncoder, {"min_df": 1, "max_weights": 3 * 7}),
                                 (TfidfEncoder, {"max_weights": 3 * 7})):
        once = encoder_cls(**options).fit_featurize(data.inputs, data.labels)
        twice = encoder_cls(**options).fit(data.inputs, data.labels)
        expected = twice.featurize(data.inputs)
        assert once.shape == expected.shape
        np.testing.assert_array_equal(once.toarray(), expected.toarray())
        # entry for entry in the same order (a sparse product sums in that order: CMC's model
        # changed in its last bits when fit_featurize's rows came unsorted)
        assert once.has_sorted_indices
        np.testing.assert_array_equal(once.indptr, expected.indptr)
        np.testing.assert_array_equal(once.indices, expected.indices)
        np.testing.assert_array_equal(once.data, expected.data)


def test_a_budget_the_words_fill_cuts_them_as_max_features_does_and_counts_no_char_ngrams(monkeypatch):
    from sklearn.feature_extraction.text import TfidfVectorizer

    data = text_dataset()
    fitted_kinds = []
    original = ClinicalEncoder._new_vectorizer

    def recording(self, kind, vocabulary=None, max_features=None):
        fitted_kinds.append(kind)
        return original(self, kind, vocabulary, max_features)

    monkeypatch.setattr(ClinicalEncoder, "_new_vectorizer", recording)
    encoder = ClinicalEncoder(min_df=1, max_weights=3 * 6)
    features = encoder.fit_featurize(data.inputs, data.labels)
    assert fitted_kinds == ["word"]  # the character n-grams were never counted
    # the same vocabulary as scikit-learn's own cut to the 6 most frequent terms
    reference = original(ClinicalEncoder(min_df=1), "word", max_features=6).fit(data.inputs)
    assert isinstance(reference, TfidfVectorizer)
    assert encoder.vectorizers["word"].vocabulary_ == reference.vocabulary_
    np.testing.assert_array_equal(features.toarray(), reference.transform(data.inputs).toarray())


def test_large_fits_train_by_adam_on_dense_batches_and_small_ones_as_before(monkeypatch):
    import comorbid.encoders.tfidf as tfidf_module

    data = text_dataset()
    small = ClinicalEncoder(min_df=1).fit(data.inputs, data.labels)
    assert not small.at_scale and small.training_defaults() == ClinicalEncoder.train_defaults
    assert small(small.featurize(data.inputs)).layout == torch.sparse_csr
    monkeypatch.setattr(tfidf_module, "SCALE_MIN_CELLS", len(data) * 3 - 1)
    large = ClinicalEncoder(min_df=1).fit(data.inputs, data.labels)
    assert large.at_scale and large.fit_cells == len(data) * 3
    assert large.training_defaults() == {**ClinicalEncoder.train_defaults, **tfidf_module.SCALE_TRAIN_DEFAULTS}
    features = large.featurize(data.inputs)
    monkeypatch.setattr(tfidf_module, "DENSE_MIN_DENSITY", 0.0)
    dense = large(features)
    assert dense.layout == torch.strided
    np.testing.assert_array_equal(dense.numpy(), features.toarray())
    monkeypatch.setattr(tfidf_module, "DENSE_MIN_DENSITY", 1.01)
    assert large(features).layout == torch.sparse_csr  # too sparse: stays sparse
    monkeypatch.setattr(tfidf_module, "DENSE_MIN_DENSITY", 0.0)
    model = MultiLabelModel("chain").fit(data)
    assert model.train_config_.optimizer == "adam" and model.train_config_.refit is False
    assert model.train_config_.batch_size == tfidf_module.SCALE_TRAIN_DEFAULTS["batch_size"]
    # the user's settings still go on top
    assert MultiLabelModel("chain", train={"epochs": 2}).fit(data).train_config_.epochs == 2


def test_an_at_scale_encoder_saves_and_loads_as_such(tmp_path, monkeypatch):
    import comorbid.encoders.tfidf as tfidf_module

    data = text_dataset()
    monkeypatch.setattr(tfidf_module, "SCALE_MIN_CELLS", 10)
    model = MultiLabelModel("independent", train={"epochs": 3}).fit(data)
    model.save(tmp_path / "m")
    loaded = MultiLabelModel.load(tmp_path / "m")
    assert loaded.encoder_.at_scale and loaded.encoder_.fit_cells == model.encoder_.fit_cells
    np.testing.assert_array_equal(loaded.marginals(data), model.marginals(data))


def test_large_label_matrices_get_a_random_validation_split(monkeypatch):
    data = text_dataset()
    calls = []
    original = training_module.random_validation_split

    def recording(n, fraction, seed):
        calls.append((n, fraction, seed))
        return original(n, fraction, seed)

    monkeypatch.setattr(training_module, "random_validation_split", recording)
    MultiLabelModel("independent", train={"optimizer": "adam", "epochs": 2}).fit(data)
    assert calls == []
    monkeypatch.setattr(training_module, "STRATIFY_MAX_CELLS", 10)
    MultiLabelModel("independent", train={"optimizer": "adam", "epochs": 2, "validation_fraction": 0.2}).fit(data)
    assert calls == [(len(data), 0.2, 0)]
    train, validation = original(50, 0.2, 3)
    assert len(validation) == 10 and len(train) == 40 and not set(train) & set(validation)
    assert sorted([*train, *validation]) == list(range(50))
    np.testing.assert_array_equal(original(50, 0.2, 3)[1], validation)


def test_word_statuses_are_annotates_words_and_statuses():
    from comorbid.data import synthetic_icd10_set
    from comorbid.text.negation import annotate, word_statuses

    texts = ["No focal pneumonia. Possible atelectasis?", "Cough; rule out pneumonia, but mild atelectasis.",
             "Fever without cough. İstanbul x-ray: r/o pneumonia?", ""]
    texts += synthetic_icd10_set(n_notes=5, n_codes=20, seed=1).inputs
    for text in texts:
        assert word_statuses(text) == [(t.text.lower(), t.status) for t in annotate(text)]
        assert word_statuses(text, 2) == [(t.text.lower(), t.status) for t in annotate(text, 2)]
