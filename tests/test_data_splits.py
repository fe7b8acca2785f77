"""Stratified k-fold and train/validation splits."""

import numpy as np
import pytest
from sklearn.model_selection import KFold, ShuffleSplit

from comorbid.data import data_root, kfold_indices, read_cmc_xml, synthetic_coding_set, train_validation_split


def _label_sets():
    """Synthetic coding labels, plus the CMC 2007 labels when the data is here."""
    sets = {"synthetic": synthetic_coding_set(600, seed=0).labels}
    root = data_root()
    if root is not None and (root / "cmc2007" / "2007ChallengeTrainData.xml").is_file():
        sets["cmc2007"] = read_cmc_xml(root / "cmc2007" / "2007ChallengeTrainData.xml").labels
    return sets


LABELS = _label_sets()


def _deviation(labels, folds):
    """Mean over folds and labels of |label share in the test fold - share overall|."""
    overall = labels.mean(0)
    return np.mean([np.abs(labels[test].mean(0) - overall).mean() for _, test in folds])


@pytest.mark.parametrize("name", sorted(LABELS))
def test_folds_partition_the_rows(name):
    labels = LABELS[name]
    folds = kfold_indices(labels, n_folds=5, seed=0)
    assert len(folds) == 5
    tests = np.concatenate([test for _, test in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(len(labels)))
    for train, test in folds:
        assert train.dtype == np.int64 and np.intersect1d(train, test).size == 0
        np.testing.assert_array_equal(np.union1d(train, test), np.arange(len(labels)))
        assert abs(len(test) - len(labels) / 5) <= 0.05 * len(labels)


@pytest.mark.parametrize("name", sorted(LABELS))
def test_folds_are_more_balanced_than_plain_kfold(name):
    labels = LABELS[name]
    for seed in range(3):
        stratified = _deviation(labels, kfold_indices(labels, 5, seed))
        plain = _deviation(labels, list(KFold(5, shuffle=True, random_state=seed).split(labels)))
        assert stratified < 0.5 * plain


def test_deterministic_for_a_seed_and_different_for_another():
    labels = LABELS["synthetic"]
    first, again, other = kfold_indices(labels, 4, 7), kfold_indices(labels, 4, 7), kfold_indices(labels, 4, 8)
    for (a_train, a_test), (b_train, b_test) in zip(first, again):
        np.testing.assert_array_equal(a_test, b_test)
        np.testing.assert_array_equal(a_train, b_train)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, other))


def test_fold_count_errors():
    labels = np.eye(3, dtype=np.int8)
    with pytest.raises(ValueError, match=r"2 <= n_folds <= 3 .* got n_folds=1"):
        kfold_indices(labels, 1)
    with pytest.raises(ValueError, match=r"got n_folds=4"):
        kfold_indices(labels, 4)
    assert len(kfold_indices(labels, 3)) == 3
    with pytest.raises(ValueError, match=r"\[N, M\]"):
        kfold_indices(np.zeros(5), 2)
    with pytest.raises(ValueError, match="only 0/1"):
        kfold_indices(np.full((4, 2), 2), 2)


def test_no_label_columns_fall_back_to_plain_splits():
    labels = np.zeros((10, 0), dtype=np.int8)
    folds = kfold_indices(labels, 5, seed=3)
    expected = list(KFold(5, shuffle=True, random_state=3).split(np.zeros((10, 1))))
    for (train, test), (e_train, e_test) in zip(folds, expected):
        np.testing.assert_array_equal(test, np.sort(e_test))
    train, validation = train_validation_split(labels, 0.3, seed=1)
    e_train, e_validation = next(ShuffleSplit(1, test_size=3, random_state=1).split(np.zeros((10, 1))))
    np.testing.assert_array_equal(validation, np.sort(e_validation))


@pytest.mark.parametrize("name", sorted(LABELS))
def test_train_validation_split(name):
    labels = LABELS[name]
    train, validation = train_validation_split(labels, 0.2, seed=0)
    assert np.intersect1d(train, validation).size == 0
    np.testing.assert_array_equal(np.union1d(train, validation), np.arange(len(labels)))
    assert abs(len(validation) / len(labels) - 0.2) < 0.02
    again = train_validation_split(labels, 0.2, seed=0)
    np.testing.assert_array_equal(again[1], validation)
    assert not np.array_equal(train_validation_split(labels, 0.2, seed=1)[1], validation)
    plain = next(ShuffleSplit(1, test_size=0.2, random_state=0).split(labels))[1]
    overall = labels.mean(0)
    assert np.abs(labels[validation].mean(0) - overall).mean() < np.abs(labels[plain].mean(0) - overall).mean()


def test_validation_fraction_errors():
    labels = np.eye(4, dtype=np.int8)
    for fraction in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="0 < validation_fraction < 1"):
            train_validation_split(labels, fraction)
    with pytest.raises(ValueError, match="non-empty"):
        train_validation_split(labels, 0.05)
