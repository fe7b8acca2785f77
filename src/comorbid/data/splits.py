"""TEMPORARY stub until the data branch lands (iterative stratification)."""

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold, MultilabelStratifiedShuffleSplit


def kfold_indices(labels, n_folds=5, seed=0):
    splitter = MultilabelStratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [(a, b) for a, b in splitter.split(np.zeros(len(labels)), labels)]


def train_validation_split(labels, validation_fraction=0.2, seed=0):
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=validation_fraction, random_state=seed)
    return next(splitter.split(np.zeros(len(labels)), labels))
