"""The held-out stage: out-of-fold predictions that decoders (and calibration) are tuned on."""

import numpy as np
import pytest

import comorbid.model
from comorbid.data import MultiLabelDataset
from comorbid.data.splits import kfold_indices
from comorbid.evaluation import cross_validate
from comorbid.heldout import held_out_predictions
from comorbid.model import MultiLabelModel
from test_model import tiny_dataset


class RecordingModel:
    """Predicts each label's training frequency and remembers which ids it trained on."""

    def __init__(self, part: MultiLabelDataset):
        self.ids = set(part.ids)
        self.rates = part.labels.mean(0)

    def marginals(self, part: MultiLabelDataset) -> np.ndarray:
        return np.tile(self.rates, (len(part), 1))


def test_every_row_is_predicted_once_by_a_model_that_did_not_train_on_it():
    data = tiny_dataset(40)
    heldout = held_out_predictions(lambda part, _: RecordingModel(part), data, n_folds=4, seed=1)
    assert len(heldout.folds) == 4
    seen = np.concatenate([rows for _, rows in heldout.folds])
    assert sorted(seen.tolist()) == list(range(40))
    for model, rows in heldout.folds:
        assert not model.ids & {data.ids[i] for i in rows}
        np.testing.assert_allclose(heldout.marginals[rows], np.tile(model.rates, (len(rows), 1)))
    np.testing.assert_array_equal(heldout.labels, data.labels)
    again = held_out_predictions(lambda part, _: RecordingModel(part), data, n_folds=4, seed=1)
    np.testing.assert_array_equal(again.marginals, heldout.marginals)  # seeded


def test_small_datasets_have_no_heldout_stage_and_bad_folds_are_refused():
    assert held_out_predictions(lambda part, _: RecordingModel(part), tiny_dataset(5), n_folds=3) is None
    with pytest.raises(ValueError, match="at least 2"):
        held_out_predictions(lambda part, _: RecordingModel(part), tiny_dataset(20), n_folds=1)
    # 7 rows and 5 folds asked: folds shrink so each keeps 2 rows
    assert len(held_out_predictions(lambda part, _: RecordingModel(part), tiny_dataset(7), n_folds=5).folds) == 3


def test_cross_validation_tunes_inside_the_training_fold_only(monkeypatch):
    data = tiny_dataset(40)
    seen_ids = []
    original = comorbid.model.held_out_predictions

    def recording(train, dataset, n_folds, seed):
        seen_ids.append(set(dataset.ids))
        return original(train, dataset, n_folds, seed)

    monkeypatch.setattr(comorbid.model, "held_out_predictions", recording)
    result = cross_validate(data, lambda: MultiLabelModel("independent", heldout_folds=2), ["micro-f1", "hamming"], n_folds=2)
    assert set(result["metrics"]) == {"micro-f1", "hamming"}
    assert len(seen_ids) == 2  # once per outer fold, shared by every tuned decoder
    for ids, (_, test_rows) in zip(seen_ids, kfold_indices(data.labels, 2, 0)):
        assert not ids & {data.ids[i] for i in test_rows}
