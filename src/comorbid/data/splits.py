"""Multi-label stratified splits by iterative stratification.

Sechidis, K., Tsoumakas, G. and Vlahavas, I. (2011). "On the stratification of multi-label
data". ECML PKDD 2011, LNCS 6913, 145-158. The implementation is the
``iterative-stratification`` package's (``iterstrat``); an empty label matrix falls back to
scikit-learn's plain shuffled splits.
"""

from __future__ import annotations

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold, MultilabelStratifiedShuffleSplit
from sklearn.model_selection import KFold, ShuffleSplit


def kfold_indices(labels: np.ndarray, n_folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_folds`` (train, test) row-index pairs whose test parts partition the rows and keep
    each label's proportion close to the whole's.

    Args:
        labels: ``[N, M]`` 0/1 label matrix (``M = 0`` falls back to plain shuffled k-fold).
        n_folds: number of folds, ``2 <= n_folds <= N``.
        seed: shuffling seed; the same seed gives the same folds.

    Returns:
        ``n_folds`` pairs of sorted ``np.int64`` index arrays ``(train [N - n_k], test [n_k])``.

    Raises:
        ValueError: ``n_folds`` out of range or ``labels`` not a 2-D 0/1 matrix.
    """
    labels = _check_labels(labels)
    n = labels.shape[0]
    if not 2 <= n_folds <= n:
        raise ValueError(f"Expected 2 <= n_folds <= {n} (the number of rows), got n_folds={n_folds}")
    if labels.shape[1] == 0:
        splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    else:
        splitter = MultilabelStratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [
        (np.sort(train).astype(np.int64), np.sort(test).astype(np.int64))
        for train, test in splitter.split(np.zeros((n, 1)), labels)
    ]


def train_validation_split(
    labels: np.ndarray, validation_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One stratified (train, validation) split of the rows.

    Args:
        labels: ``[N, M]`` 0/1 label matrix.
        validation_fraction: share of rows in the validation part, in (0, 1).
        seed: the same seed gives the same split.

    Returns:
        Sorted ``np.int64`` index arrays ``(train, validation)``, disjoint, covering all rows.

    Raises:
        ValueError: a fraction outside (0, 1), or one that leaves either part empty.
    """
    labels = _check_labels(labels)
    n = labels.shape[0]
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"Expected 0 < validation_fraction < 1, got {validation_fraction}")
    n_validation = int(round(validation_fraction * n))
    if not 1 <= n_validation <= n - 1:
        raise ValueError(
            f"Expected validation_fraction={validation_fraction} of {n} rows to leave both parts "
            f"non-empty, got {n_validation} validation rows"
        )
    if labels.shape[1] == 0:
        splitter = ShuffleSplit(n_splits=1, test_size=n_validation, random_state=seed)
    else:
        splitter = MultilabelStratifiedShuffleSplit(
            n_splits=1, test_size=validation_fraction, random_state=seed
        )
    train, validation = next(splitter.split(np.zeros((n, 1)), labels))
    return np.sort(train).astype(np.int64), np.sort(validation).astype(np.int64)


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"Expected `labels` to be [N, M], got shape {labels.shape}")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError("Expected `labels` to contain only 0/1")
    return labels.astype(np.int8)
