"""Every metric rejects bad input with a ValueError that says what was expected and what was got."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from comorbid import metrics

SET_METRICS = [
    metrics.subset_accuracy,
    metrics.hamming_loss,
    metrics.micro_f1,
    metrics.macro_f1,
    metrics.micro_precision,
    metrics.micro_recall,
    metrics.instance_f1,
    metrics.jaccard,
    metrics.evaluate,
]
SCORE_METRICS = [
    metrics.ranking_loss,
    metrics.coverage,
    metrics.label_ranking_average_precision,
    lambda y_true, y_score: metrics.precision_at_k(y_true, y_score, 3),
    lambda y_true, y_score: metrics.recall_at_k(y_true, y_score, 3),
    metrics.mean_average_precision,
    lambda y_true, y_score: metrics.evaluate(y_true, y_true, y_score),
]


def labels(n_rows=20, n_labels=5, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, size=(n_rows, n_labels))


@pytest.mark.parametrize("metric", SET_METRICS)
def test_value_that_is_not_0_or_1_is_located(metric):
    y_pred = labels()
    y_pred[17, 3] = 2
    y_pred[18, 0] = 5  # a later row: the first bad entry is reported
    with pytest.raises(ValueError, match=re.escape("Expected `y_pred` to contain only 0/1, got 2 at row 17, column 3")):
        metric(labels(seed=1), y_pred)


@pytest.mark.parametrize(
    "convert",
    [sp.csr_matrix, sp.csc_matrix, torch.from_numpy, lambda x: x.astype(np.float32), lambda x: x.tolist()],
    ids=["csr", "csc", "torch", "float32", "list"],
)
def test_value_that_is_not_0_or_1_is_located_in_every_container(convert):
    y_true = labels()
    y_true[4, 2] = -1
    y_true[2, 4] = 7  # first in row-major order, even though csc stores column 2 first
    with pytest.raises(ValueError, match=re.escape("Expected `y_true` to contain only 0/1, got 7 at row 2, column 4")):
        metrics.jaccard(convert(y_true), labels())


def test_fractional_and_nan_labels_are_reported():
    y_pred = labels().astype(float)
    y_pred[0, 1] = 0.5
    with pytest.raises(ValueError, match=re.escape("got 0.5 at row 0, column 1")):
        metrics.micro_f1(labels(), y_pred)
    y_pred[0, 1] = np.nan
    with pytest.raises(ValueError, match=re.escape("got nan at row 0, column 1")):
        metrics.micro_f1(labels(), y_pred)


@pytest.mark.parametrize("metric", SET_METRICS)
def test_shape_mismatch(metric):
    with pytest.raises(ValueError, match=re.escape("Expected `y_pred` to have the shape of `y_true` (20, 5), got (20, 4)")):
        metric(labels(), labels(n_labels=4))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.array([0, 1, 1]), "Expected `y_true` to be a 2-D [N, M] matrix, got shape (3,)"),
        (np.zeros((2, 2, 2)), "Expected `y_true` to be a 2-D [N, M] matrix, got shape (2, 2, 2)"),
        (np.zeros((0, 3)), "Expected `y_true` to have at least one row, got shape (0, 3)"),
        (np.zeros((3, 0)), "Expected `y_true` to have at least one label column, got shape (3, 0)"),
        ([[0, 1], [1]], "Expected `y_true` to be a rectangular [N, M] matrix"),
        ([["a", "b"]], "Expected `y_true` to hold numbers, got dtype <U1"),
    ],
)
def test_malformed_label_matrices(bad, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        metrics.hamming_loss(bad, np.zeros((3, 3)))


@pytest.mark.parametrize("metric", SCORE_METRICS)
def test_nan_score_is_located(metric):
    y_score = np.random.default_rng(0).random((20, 5))
    y_score[6, 1] = np.nan
    with pytest.raises(ValueError, match=re.escape("got nan at row 6, column 1")):
        metric(labels(), y_score)


@pytest.mark.parametrize("metric", SCORE_METRICS)
def test_score_shape_mismatch(metric):
    with pytest.raises(ValueError, match=re.escape("Expected `y_score` to have the shape of `y_true` (20, 5), got (20, 6)")):
        metric(labels(), np.zeros((20, 6)))


@pytest.mark.parametrize("metric", [metrics.ranking_loss, metrics.coverage, metrics.label_ranking_average_precision])
def test_sklearn_ranking_metrics_reject_infinite_scores(metric):
    y_score = np.zeros((20, 5))
    y_score[3, 2] = -np.inf
    with pytest.raises(ValueError, match=re.escape("Expected `y_score` to contain only finite values")):
        metric(labels(), y_score)


@pytest.mark.parametrize("zero_division", [0.5, "warn", True, None, 2])
@pytest.mark.parametrize("metric", [metrics.micro_f1, metrics.macro_f1, metrics.micro_precision, metrics.micro_recall])
def test_zero_division_choices(metric, zero_division):
    with pytest.raises(ValueError, match=re.escape(f"Expected `zero_division` to be 0.0, 1.0 or nan, got {zero_division!r}")):
        metric(labels(), labels(), zero_division=zero_division)


@pytest.mark.parametrize("k", [0, -1, 1.0, True, "3"])
@pytest.mark.parametrize("metric", [metrics.precision_at_k, metrics.recall_at_k])
def test_k_must_be_a_positive_integer(metric, k):
    with pytest.raises(ValueError, match=re.escape("Expected `k` to be an integer >= 1, got")):
        metric(labels(), np.zeros((20, 5)), k)


def test_evaluate_checks_ks():
    with pytest.raises(ValueError, match=re.escape("Expected `k` to be an integer >= 1, got 0")):
        metrics.evaluate(labels(), labels(), np.zeros((20, 5)), ks=(1, 0))
