"""Calibration (temperature scaling), bagged ensembles and their save/load."""

import json

import numpy as np
import pytest
import torch

from comorbid.calibration import fit_temperature
from comorbid.data import MultiLabelDataset
from comorbid.distributions.ensemble import UniformMixture
from comorbid.heads.bagging import bootstrap_rows
from comorbid.model import MultiLabelModel
from comorbid.training import TrainConfig
from test_model import coded_dataset


def logistic_dataset(n=600, seed=0) -> MultiLabelDataset:
    """Labels drawn from known logistic models of 3 features: a linear model can be calibrated."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    logits = x @ np.array([[2.0, -1.0], [0.5, 2.0], [-1.0, 0.0]])
    labels = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(np.int8)
    return MultiLabelDataset([str(i) for i in range(n)], x, labels, ["a", "b"])


LINEAR = {"encoder_options": {"hidden": []}, "train": TrainConfig(weight_decay=1e-4), "nonempty": False}


def test_temperature_undoes_an_overconfident_model():
    """Weights multiplied by 3 make the held-out models 3x over-confident: T comes back near 3."""
    data = logistic_dataset()
    model = MultiLabelModel("independent", **LINEAR)
    heldout = model.fit(data).held_out(data)
    for fold_model, _ in heldout.folds:
        with torch.no_grad():
            fold_model.head_.linear.weight.mul_(3.0)
            fold_model.head_.linear.bias.mul_(3.0)
    calibration = fit_temperature(heldout, data)
    assert 2.4 < calibration.temperature < 3.6
    assert calibration.nll_after < calibration.nll_before
    # the held-out marginals are recomputed at the fitted temperature
    recomputed = np.concatenate([m.marginals(data.subset(rows)) for m, rows in heldout.folds])
    order = np.concatenate([rows for _, rows in heldout.folds])
    np.testing.assert_allclose(heldout.marginals[order], recomputed, rtol=1e-6)


def test_calibrated_model_saves_its_temperature(tmp_path):
    data = logistic_dataset(300)
    trained = MultiLabelModel("chain", calibrate=True, **LINEAR).fit(data)
    assert set(trained.calibration_) == {"temperature", "nll_before", "nll_after", "ece_before", "ece_after", "rows"}
    assert trained.calibration_["nll_after"] <= trained.calibration_["nll_before"]
    assert trained.head_.temperature == trained.calibration_["temperature"]
    trained.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["temperature"] == trained.head_.temperature
    loaded = MultiLabelModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.marginals(data), trained.marginals(data))
    # the temperature is applied: a plain copy of the same weights predicts differently
    loaded.head_.temperature = 1.0
    assert not np.allclose(loaded.marginals(data), trained.marginals(data))


@pytest.mark.parametrize("model", ["independent", "chain"])
def test_bagged_members_differ_and_reload_exactly(tmp_path, model):
    data = coded_dataset()
    trained = MultiLabelModel(model, ensemble=3).fit(data)
    members = trained.head_.members
    assert len(members) == 3 and trained.head_.nonempty and all(m.nonempty for m in members)
    weights = [m.linear.weight.detach() for m in members]
    assert not torch.equal(weights[0], weights[1])  # different bootstrap samples
    dist = next(trained.distributions(data))
    assert isinstance(dist, UniformMixture) and dist.n_members == 3
    predictions = trained.predict(data, ["hamming", "subset", "instance-f1"])
    for y in predictions.values():
        assert y.sum(1).min() >= 1  # every member is conditioned on a non-empty set
        assert (y[:, :3] == data.labels[:, :3]).mean() > 0.9
    trained.save(tmp_path / "m")
    loaded = MultiLabelModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.marginals(data), trained.marginals(data))
    assert loaded.ensemble == 3 and loaded.predict(data, ["subset"])["subset"].tolist() == predictions["subset"].tolist()


def test_bootstrap_rows_are_seeded_and_differ_by_member():
    assert np.array_equal(bootstrap_rows(50, 1, 0), bootstrap_rows(50, 1, 0))
    assert not np.array_equal(bootstrap_rows(50, 1, 0), bootstrap_rows(50, 2, 0))
    assert bootstrap_rows(50, 0, 3).min() >= 0 and bootstrap_rows(50, 0, 3).max() < 50


def test_ensemble_refuses_a_trainable_encoder_and_bad_sizes():
    data = logistic_dataset(60)
    with pytest.raises(ValueError, match="encoder without trainable parameters"):
        MultiLabelModel("independent", encoder_options={"hidden": [4]}, ensemble=2).fit(data)
    with pytest.raises(ValueError, match="`ensemble` must be an integer >= 1, got 0"):
        MultiLabelModel("independent", ensemble=0).fit(data)


def test_row_weights():
    from comorbid.training import row_weights

    labels = np.array([[1, 0], [1, 0], [1, 0], [1, 1], [0, 0]])
    assert row_weights(labels, "none") is None
    inverse = row_weights(labels, "inverse")
    # rarest label of each row: a (4 rows), a, a, b (1 row), empty (1 row)
    np.testing.assert_allclose(inverse / inverse[0], [1, 1, 1, 4, 4])
    assert inverse.mean() == pytest.approx(1.0)
    sqrt = row_weights(labels, "sqrt")
    np.testing.assert_allclose(sqrt / sqrt[0], [1, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="balance"):
        row_weights(labels, "log")


@pytest.mark.parametrize("model, head_options", [("chain", {}), ("independent", {"loss": "focal"})])
def test_balanced_training_raises_the_rare_labels(model, head_options):
    """Weighting rows with a rare label up raises that label's predicted probability."""
    data = coded_dataset()
    rare = int(np.argmin(np.where(data.labels.sum(0) > 0, data.labels.sum(0), 10**9)))
    plain = MultiLabelModel(model, head_options=head_options).fit(data).marginals(data)[:, rare].mean()
    balanced = MultiLabelModel(model, head_options=head_options, train={"balance": "inverse"}).fit(data)
    assert balanced.marginals(data)[:, rare].mean() > plain
