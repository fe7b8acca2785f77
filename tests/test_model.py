import json

import numpy as np
import pytest
import torch

from comorbid.data import MultiLabelDataset
from comorbid.heads import HEADS
from comorbid.model import MultiLabelModel
from comorbid.training import TrainConfig
from conftest import tiny_text_rows


def tiny_dataset(n=60, seed=0) -> MultiLabelDataset:
    rows = tiny_text_rows(n, seed)
    names = ["cough", "fever", "pneumonia", "never-seen"]
    labels = np.array([[name in row[2] for name in names] for row in rows], dtype=np.int8)
    return MultiLabelDataset([r[0] for r in rows], [r[1] for r in rows], labels, names)


def numeric_dataset(n=80, seed=0) -> MultiLabelDataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    labels = np.stack([x[:, 0] > 0, x[:, 1] > 0.5, (x[:, 0] > 0) & (x[:, 2] > 0)], 1).astype(np.int8)
    x[3, 1] = np.nan  # a missing value is imputed, not propagated
    return MultiLabelDataset([str(i) for i in range(n)], x, labels, ["a", "b", "c"])


@pytest.mark.parametrize("model", sorted(HEADS))
def test_learns_text_labels_and_a_label_with_no_positives_does_not_crash(model):
    data = tiny_dataset()
    trained = MultiLabelModel(model).fit(data)
    predictions = trained.predict(data, ["hamming", "subset", "instance-f1"])
    for name, y in predictions.items():
        assert y.shape == data.labels.shape and y.dtype == np.int8
        assert (y[:, :3] == data.labels[:, :3]).mean() > 0.9, name
        assert y[:, 3].sum() == 0, "a label never seen in training should not be predicted"
    marginals = trained.marginals(data)
    assert np.all((marginals >= 0) & (marginals <= 1))


@pytest.mark.parametrize("model", sorted(HEADS))
def test_save_and_load_reproduce_predictions_exactly(tmp_path, model):
    data = tiny_dataset()
    trained = MultiLabelModel(model).fit(data)
    trained.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = MultiLabelModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.marginals(data), trained.marginals(data))
    for decoder in ("hamming", "subset", "instance-f1"):
        np.testing.assert_array_equal(loaded.predict(data, [decoder])[decoder], trained.predict(data, [decoder])[decoder])
    # saving again over an existing directory replaces it whole
    trained.save(tmp_path / "m")
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_numeric_features_with_mlp_encoder(tmp_path):
    data = numeric_dataset()
    trained = MultiLabelModel("chain", train=TrainConfig(epochs=60, seed=1)).fit(data)
    assert trained.encoder_.name == "mlp"
    y = trained.predict(data, ["subset"])["subset"]
    assert (y == data.labels).mean() > 0.85
    trained.save(tmp_path / "m")
    np.testing.assert_allclose(MultiLabelModel.load(tmp_path / "m").marginals(data), trained.marginals(data))


def test_training_is_reproducible_for_a_seed():
    data = numeric_dataset()
    first = MultiLabelModel("independent", train=TrainConfig(epochs=5, seed=3)).fit(data).marginals(data)
    second = MultiLabelModel("independent", train=TrainConfig(epochs=5, seed=3)).fit(data).marginals(data)
    np.testing.assert_array_equal(first, second)


def test_load_rejects_a_directory_that_is_not_a_model(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        MultiLabelModel.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="line 1"):
        MultiLabelModel.load(tmp_path)


def test_failed_save_leaves_no_partial_directory(tmp_path, monkeypatch):
    trained = MultiLabelModel("independent").fit(tiny_dataset())

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("comorbid.model.save_file", broken)
    with pytest.raises(OSError):
        trained.save(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_config_is_plain_json(tmp_path):
    MultiLabelModel("chain").fit(tiny_dataset()).save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["label_names"] == ["cough", "fever", "pneumonia", "never-seen"]
    assert config["head"]["name"] == "chain"


def test_unknown_model_or_encoder_is_a_clear_error():
    unchecked = MultiLabelModel("bogus")  # scikit-learn's contract: __init__ stores, fit checks
    assert unchecked.model == "bogus"
    with pytest.raises(ValueError, match="Unknown model 'bogus'"):
        unchecked.fit(tiny_dataset())
    with pytest.raises(ValueError, match="Unknown encoder"):
        MultiLabelModel("independent", encoder="bogus").fit(tiny_dataset())
    with pytest.raises(ValueError, match="reads a feature matrix"):
        MultiLabelModel("independent", encoder="mlp").fit(tiny_dataset())


@pytest.mark.parametrize("loss", sorted(__import__("comorbid.losses", fromlist=["LOSSES"]).LOSSES))
def test_every_loss_trains_the_independent_head(loss, tmp_path):
    data = tiny_dataset()
    trained = MultiLabelModel("independent", head_options={"loss": loss}).fit(data)
    y = trained.predict(data, ["top-k=1"])["top-k=1"]
    # the highest-scoring label is a true one for (nearly) every row that has labels
    has_labels = data.labels.sum(1) > 0
    assert (y[has_labels] * data.labels[has_labels]).sum(1).mean() > 0.9
    trained.save(tmp_path / "m")  # the loss is not part of the saved model
    np.testing.assert_array_equal(MultiLabelModel.load(tmp_path / "m").marginals(data), trained.marginals(data))


def test_icd_labels_give_the_wasserstein_loss_a_tree_cost():
    from comorbid.heads.independent import label_structure_options

    options = label_structure_options("wasserstein", {}, ["786.2", "786.07", "599.0"])
    cost = options["cost_matrix"]
    assert cost[0, 1] < cost[0, 2]  # cough is nearer wheezing than a urinary tract infection
    assert label_structure_options("wasserstein", {}, ["a", "b"])["cost_matrix"] is None


def coded_dataset() -> MultiLabelDataset:
    """The tiny dataset without its rows that have no label."""
    data = tiny_dataset()
    return data.subset(np.flatnonzero(data.labels.sum(1) > 0))


def test_nonempty_auto_follows_the_training_labels(tmp_path):
    data = coded_dataset()
    trained = MultiLabelModel("chain").fit(data)
    assert trained.head_.nonempty
    for name, y in trained.predict(data, ["hamming", "subset", "instance-f1"]).items():
        assert y.sum(1).min() >= 1, f"{name} predicted an empty set"
    trained.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["nonempty"] is True
    assert MultiLabelModel.load(tmp_path / "m").head_.nonempty

    with_empty = tiny_dataset()
    assert not MultiLabelModel("chain").fit(with_empty).head_.nonempty
    with pytest.raises(ValueError, match=r"\d+ training rows have no label \(the first is row 1\)"):
        MultiLabelModel("chain", nonempty=True).fit(with_empty)
    with pytest.raises(ValueError, match="nonempty"):
        MultiLabelModel("chain", nonempty="yes").fit(with_empty)


def test_nonempty_training_maximises_the_conditional_likelihood():
    """The head's nll is -log p(y | y != 0): lower than -log p(y) by log(1 - p(0))."""
    data = coded_dataset()
    trained = MultiLabelModel("independent").fit(data)
    features = trained.encoder_(trained.encoder_.featurize(data.inputs))
    y = torch.as_tensor(data.labels, dtype=features.dtype)
    conditional = trained.head_.nll(features, y)
    trained.head_.nonempty = False
    plain = trained.head_.nll(features, y)
    p_empty = trained.head_(features).log_prob(torch.zeros_like(y)).exp()
    torch.testing.assert_close(conditional, plain + torch.log1p(-p_empty).mean())


def test_l1_penalty_keeps_fewer_weights_than_l2():
    data = tiny_dataset()
    small = {}
    for penalty in ("l1", "l2"):
        trained = MultiLabelModel("independent", train=TrainConfig(penalty=penalty, weight_decay=1e-3)).fit(data)
        small[penalty] = (trained.head_.linear.weight.abs() < 1e-2).float().mean().item()
    assert small["l1"] > small["l2"] + 0.2
    with pytest.raises(ValueError, match="`penalty` must be one of 'l2', 'l1', got 'l3'"):
        TrainConfig(penalty="l3")
    with pytest.raises(ValueError, match="`train.penalty` must be one of 'l2', 'l1', got 'l3'"):
        MultiLabelModel("independent", train={"penalty": "l3"}).fit(data)


def test_tuned_decoders_get_thresholds_from_heldout_data_that_survive_save_and_load(tmp_path):
    data = tiny_dataset()  # its last label is never positive
    trained = MultiLabelModel("independent", heldout_folds=2).fit(data, decoders=["macro-f1", "micro-f1", "hamming"])
    assert set(trained.decoder_states_) == {"macro-f1", "micro-f1"}
    macro = trained.decoder_states_["macro-f1"]
    assert macro["fallback_labels"] == [3] and macro["thresholds"][3] == macro["global_threshold"]
    assert macro["n_heldout"] == len(data)
    predictions = trained.predict(data, ["macro-f1", "micro-f1"])
    assert (predictions["micro-f1"][:, :3] == data.labels[:, :3]).mean() > 0.9
    trained.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["decoders"]["macro-f1"]["thresholds"] == macro["thresholds"]
    loaded = MultiLabelModel.load(tmp_path / "m")
    for name, y in loaded.predict(data, ["macro-f1", "micro-f1"]).items():
        np.testing.assert_array_equal(y, predictions[name])


def test_a_tuned_decoder_without_tuning_is_a_clear_error_and_tuning_costs_nothing_unless_asked(monkeypatch):
    def no_heldout(*args, **kwargs):
        raise AssertionError("the held-out stage ran although no decoder needs it")

    monkeypatch.setattr("comorbid.model.held_out_predictions", no_heldout)
    trained = MultiLabelModel("independent").fit(tiny_dataset(), decoders=["hamming", "jaccard", "mbr=jaccard"])
    assert trained.decoder_states_ == {}
    with pytest.raises(ValueError, match="needs thresholds tuned on held-out data"):
        trained.predict(tiny_dataset(), ["macro-f1"])


def test_every_decoder_predicts_through_the_model():
    data = tiny_dataset()
    trained = MultiLabelModel("chain", heldout_folds=2).fit(data, decoders=["macro-f1", "micro-f1"])
    specs = ["hamming", "subset", "instance-f1", "jaccard", "top-k=2", "macro-f1", "micro-f1", "mbr=jaccard"]
    for name, y in trained.predict(data, specs).items():
        assert y.shape == data.labels.shape and set(np.unique(y)) <= {0, 1}, name
        assert (y[:, :3] == data.labels[:, :3]).mean() > 0.8 or name == "top-k=2", name
