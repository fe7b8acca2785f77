"""comorbid.metrics equals scikit-learn (and, where scikit-learn has nothing, a brute force)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics as skm
from strategies import CONTAINERS, DETERMINISTIC, label_matrix_pairs, problems, score_matrices, shapes, to_container

from comorbid import metrics
from comorbid.metrics import ranking

ZERO_DIVISIONS = (0.0, 1.0, float("nan"))


def same(a: float, b: float) -> bool:
    """Equal up to float rounding, with nan equal to nan."""
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


# ------------------------------------------------------------------ references (M >= 2)
def sklearn_set_metrics(y_true, y_pred, zero_division=0.0) -> dict[str, float]:
    """scikit-learn's own values; ``labels`` left to scikit-learn (all M columns)."""
    return {
        "subset_accuracy": skm.accuracy_score(y_true, y_pred),
        "hamming_loss": skm.hamming_loss(y_true, y_pred),
        "micro_f1": skm.f1_score(y_true, y_pred, average="micro", zero_division=zero_division),
        "macro_f1": skm.f1_score(y_true, y_pred, average="macro", zero_division=zero_division),
        "micro_precision": skm.precision_score(y_true, y_pred, average="micro", zero_division=zero_division),
        "micro_recall": skm.recall_score(y_true, y_pred, average="micro", zero_division=zero_division),
        "instance_f1": skm.f1_score(y_true, y_pred, average="samples", zero_division=1.0),
        "jaccard": skm.jaccard_score(y_true, y_pred, average="samples", zero_division=1.0),
    }


def ours_set_metrics(y_true, y_pred, zero_division=0.0) -> dict[str, float]:
    return {
        "subset_accuracy": metrics.subset_accuracy(y_true, y_pred),
        "hamming_loss": metrics.hamming_loss(y_true, y_pred),
        "micro_f1": metrics.micro_f1(y_true, y_pred, zero_division=zero_division),
        "macro_f1": metrics.macro_f1(y_true, y_pred, zero_division=zero_division),
        "micro_precision": metrics.micro_precision(y_true, y_pred, zero_division=zero_division),
        "micro_recall": metrics.micro_recall(y_true, y_pred, zero_division=zero_division),
        "instance_f1": metrics.instance_f1(y_true, y_pred),
        "jaccard": metrics.jaccard(y_true, y_pred),
    }


# ------------------------------------------------------------------ brute force (any M)
def brute_ranking_loss(y_true, y_score) -> float:
    values = []
    for labels, scores in zip(y_true, y_score):
        relevant = [j for j in range(len(labels)) if labels[j]]
        irrelevant = [j for j in range(len(labels)) if not labels[j]]
        if not relevant or not irrelevant:
            values.append(0.0)
            continue
        wrong = sum(scores[j] <= scores[l] for j in relevant for l in irrelevant)
        values.append(wrong / (len(relevant) * len(irrelevant)))
    return float(np.mean(values))


def brute_coverage(y_true, y_score) -> float:
    values = []
    for labels, scores in zip(y_true, y_score):
        ranks = [sum(scores >= scores[j]) for j in range(len(labels)) if labels[j]]
        values.append(max(ranks) if ranks else 0)
    return float(np.mean(values))


def brute_lrap(y_true, y_score) -> float:
    values = []
    for labels, scores in zip(y_true, y_score):
        relevant = [j for j in range(len(labels)) if labels[j]]
        if len(relevant) in (0, len(labels)):
            values.append(1.0)
            continue
        precisions = [
            sum(scores[l] >= scores[j] for l in relevant) / sum(scores >= scores[j]) for j in relevant
        ]
        values.append(float(np.mean(precisions)))
    return float(np.mean(values))


def brute_top_k(scores, k) -> list[int]:
    """The k best columns, ties to the lower index, written as a sort key."""
    return sorted(range(len(scores)), key=lambda j: (-scores[j], j))[:k]


def brute_precision_at_k(y_true, y_score, k) -> float:
    return float(np.mean([sum(labels[j] for j in brute_top_k(s, k)) / k for labels, s in zip(y_true, y_score)]))


def brute_recall_at_k(y_true, y_score, k) -> float:
    values = [
        sum(labels[j] for j in brute_top_k(s, k)) / labels.sum() for labels, s in zip(y_true, y_score) if labels.sum()
    ]
    return float(np.mean(values)) if values else 0.0


def brute_average_precision(labels, scores, extra_true: int = 0) -> float | None:
    """CodiEsp's AP of one row, from a full sort; ``extra_true`` gold labels never ranked."""
    ranking = brute_top_k(scores, len(scores))
    size = int(labels.sum()) + extra_true
    if size == 0:
        return None
    hits, total = 0, 0.0
    for rank, j in enumerate(ranking, start=1):
        if labels[j]:
            hits += 1
            total += hits / rank
    return total / size


def brute_map(y_true, y_score, extra_true=None) -> float:
    extra_true = np.zeros(len(y_true), dtype=int) if extra_true is None else extra_true
    values = [brute_average_precision(labels, s, e) for labels, s, e in zip(y_true, y_score, extra_true)]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else 0.0


# ------------------------------------------------------------------ set metrics
@DETERMINISTIC
@given(pair=label_matrix_pairs(min_labels=2), zero_division=st.sampled_from(ZERO_DIVISIONS))
def test_set_metrics_equal_sklearn(pair, zero_division):
    """M >= 2: scikit-learn reads one column as binary targets (see the next tests)."""
    y_true, y_pred = pair
    expected = sklearn_set_metrics(y_true, y_pred, zero_division)
    got = ours_set_metrics(y_true, y_pred, zero_division)
    assert all(same(got[name], expected[name]) for name in expected), (got, expected)


@DETERMINISTIC
@given(pair=label_matrix_pairs(), kind=st.sampled_from(CONTAINERS))
def test_set_metrics_same_for_every_container(pair, kind):
    y_true, y_pred = pair
    expected = ours_set_metrics(y_true, y_pred)
    got = ours_set_metrics(to_container(y_true, kind), to_container(y_pred, kind))
    assert got == expected


@DETERMINISTIC
@given(pair=label_matrix_pairs(max_labels=1))
def test_single_label_column(pair):
    """One column is multi-label with M = 1: a zero column added to both leaves the
    row-wise and pooled metrics unchanged, and hamming / macro are the label's own."""
    y_true, y_pred = pair
    zero = np.zeros_like(y_true)
    padded_true, padded_pred = np.hstack([y_true, zero]), np.hstack([y_pred, zero])
    for name in ("subset_accuracy", "micro_f1", "micro_precision", "micro_recall", "instance_f1", "jaccard"):
        function = getattr(metrics, name)
        assert function(y_true, y_pred) == function(padded_true, padded_pred), name
    assert metrics.hamming_loss(y_true, y_pred) == pytest.approx(np.mean(y_true != y_pred))
    label_f1 = skm.f1_score(y_true[:, 0], y_pred[:, 0], zero_division=0.0)  # binary F1 of the label
    assert metrics.macro_f1(y_true, y_pred) == pytest.approx(label_f1)


def test_mixed_sparse_and_dense_inputs():
    y_true = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 0]])
    y_pred = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    dense = ours_set_metrics(y_true, y_pred)
    assert ours_set_metrics(sp.csr_matrix(y_true), y_pred) == dense
    assert ours_set_metrics(torch.tensor(y_true, dtype=torch.bool), sp.coo_matrix(y_pred)) == dense
    assert ours_set_metrics(y_true.astype(np.float32), y_pred.tolist()) == dense


def test_all_empty_matrices():
    empty = np.zeros((4, 3), dtype=np.int8)
    scores = np.arange(12.0).reshape(4, 3)
    assert metrics.evaluate(empty, empty, scores) == {
        "subset_accuracy": 1.0,
        "hamming_loss": 0.0,
        "micro_f1": 0.0,  # zero_division=0.0
        "macro_f1": 0.0,
        "instance_f1": 1.0,  # an empty prediction for an empty truth scores 1
        "jaccard": 1.0,
        "ranking_loss": 0.0,
        "coverage": 0.0,
        "label_ranking_average_precision": 1.0,
        "precision_at_1": 0.0,
        "precision_at_3": 0.0,
        "precision_at_5": 0.0,
        "recall_at_1": 0.0,  # no row has a true label
        "recall_at_3": 0.0,
        "recall_at_5": 0.0,
    }
    assert metrics.micro_f1(empty, empty, zero_division=1.0) == 1.0
    assert metrics.macro_f1(empty, empty, zero_division=1.0) == 1.0
    assert math.isnan(metrics.macro_f1(empty, empty, zero_division=float("nan")))


def test_macro_f1_counts_never_seen_labels():
    y_true = np.array([[1, 0, 0, 0], [1, 1, 0, 0]])
    y_pred = np.array([[1, 0, 0, 0], [1, 1, 0, 0]])  # perfect on labels 0, 1; 2 and 3 never seen
    assert metrics.macro_f1(y_true, y_pred) == 0.5
    assert metrics.macro_f1(y_true, y_pred, zero_division=1.0) == 1.0
    assert metrics.macro_f1(y_true, y_pred, zero_division=float("nan")) == 1.0


def test_single_row_hand_values():
    y_true, y_pred = [[1, 1, 0, 0]], [[1, 0, 1, 0]]
    assert metrics.subset_accuracy(y_true, y_pred) == 0.0
    assert metrics.hamming_loss(y_true, y_pred) == 0.5
    assert metrics.instance_f1(y_true, y_pred) == 0.5
    assert metrics.jaccard(y_true, y_pred) == pytest.approx(1 / 3)
    assert metrics.micro_precision(y_true, y_pred) == 0.5
    assert metrics.micro_recall(y_true, y_pred) == 0.5


def test_empty_truth_with_nonempty_prediction_scores_zero():
    assert metrics.instance_f1([[0, 0, 0]], [[0, 1, 0]]) == 0.0
    assert metrics.jaccard([[0, 0, 0]], [[0, 1, 0]]) == 0.0
    assert metrics.instance_f1([[0, 1, 0]], [[0, 0, 0]]) == 0.0


# ------------------------------------------------------------------ ranking metrics
@DETERMINISTIC
@given(problem=problems(min_labels=2))
def test_ranking_metrics_equal_sklearn(problem):
    y_true, _, y_score = problem
    assert metrics.ranking_loss(y_true, y_score) == skm.label_ranking_loss(y_true, y_score)
    assert metrics.coverage(y_true, y_score) == skm.coverage_error(y_true, y_score)
    assert metrics.label_ranking_average_precision(y_true, y_score) == skm.label_ranking_average_precision_score(
        y_true, y_score
    )


@DETERMINISTIC
@given(problem=problems())
def test_ranking_metrics_equal_their_definitions(problem):
    """Including M = 1, which scikit-learn refuses for ranking loss and coverage."""
    y_true, _, y_score = problem
    assert metrics.ranking_loss(y_true, y_score) == pytest.approx(brute_ranking_loss(y_true, y_score), abs=1e-12)
    assert metrics.coverage(y_true, y_score) == pytest.approx(brute_coverage(y_true, y_score), abs=1e-12)
    assert metrics.label_ranking_average_precision(y_true, y_score) == pytest.approx(
        brute_lrap(y_true, y_score), abs=1e-12
    )


@DETERMINISTIC
@given(problem=problems(), data=st.data())
def test_top_k_metrics_equal_brute_force(problem, data):
    """Ties are frequent in the drawn scores; k may exceed M."""
    y_true, _, y_score = problem
    k = data.draw(st.integers(1, y_true.shape[1] + 1), label="k")
    assert metrics.precision_at_k(y_true, y_score, k) == pytest.approx(brute_precision_at_k(y_true, y_score, k), abs=1e-12)
    assert metrics.recall_at_k(y_true, y_score, k) == pytest.approx(brute_recall_at_k(y_true, y_score, k), abs=1e-12)


@DETERMINISTIC
@given(data=st.data())
def test_recall_at_k_is_sklearn_top_k_accuracy_for_one_true_label(data):
    """With exactly one true label per row and no ties, recall@k is top-k accuracy."""
    n_rows, n_labels = data.draw(shapes(min_labels=3))
    classes = np.array(data.draw(st.lists(st.integers(0, n_labels - 1), min_size=n_rows, max_size=n_rows)))
    y_true = np.eye(n_labels, dtype=np.int8)[classes]
    y_score = data.draw(score_matrices((n_rows, n_labels), ties=False))
    k = data.draw(st.integers(1, n_labels - 1))  # k = M is trivially 1 (scikit-learn warns)
    expected = skm.top_k_accuracy_score(classes, y_score, k=k, labels=np.arange(n_labels))
    assert metrics.recall_at_k(y_true, y_score, k) == pytest.approx(expected)
    assert metrics.precision_at_k(y_true, y_score, k) == pytest.approx(expected / k)


def test_top_k_ties_go_to_the_lower_column():
    y_true = np.array([[0, 1, 0, 0], [0, 0, 1, 1]])
    y_score = np.array([[0.3, 0.3, 0.3, 0.3], [0.1, 0.9, 0.9, 0.9]])
    # row 0: top-1 = column 0 (miss); row 1: top-2 = columns 1, 2 (one hit)
    assert metrics.precision_at_k(y_true, y_score, 1) == 0.0
    assert metrics.precision_at_k(y_true, y_score, 2) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert metrics.recall_at_k(y_true, y_score, 2) == pytest.approx((1 + 1 / 2) / 2)


def test_recall_at_k_leaves_out_rows_without_truth():
    y_true = np.array([[1, 0, 0], [0, 0, 0]])
    y_score = np.array([[0.9, 0.1, 0.0], [0.9, 0.1, 0.0]])
    assert metrics.recall_at_k(y_true, y_score, 1) == 1.0
    assert metrics.precision_at_k(y_true, y_score, 1) == 0.5  # the empty row counts in p@k


def test_precision_at_k_beyond_m_keeps_k_as_denominator():
    y_true, y_score = np.array([[1, 1]]), np.array([[0.2, 0.8]])
    assert metrics.precision_at_k(y_true, y_score, 5) == pytest.approx(2 / 5)
    assert metrics.recall_at_k(y_true, y_score, 5) == 1.0


def test_top_k_accepts_infinite_scores():
    y_true = np.array([[1, 0, 1]])
    y_score = np.array([[-np.inf, np.inf, 0.0]])
    assert metrics.precision_at_k(y_true, y_score, 2) == 0.5
    assert metrics.recall_at_k(y_true, y_score, 2) == 0.5


@DETERMINISTIC
@given(problem=problems(), ks=st.lists(st.integers(1, 7), min_size=1, max_size=4), sparse_truth=st.booleans())
def test_top_k_row_blocks_and_shared_sort_do_not_change_results(problem, ks, sparse_truth):
    y_true, _, y_score = problem
    labels = sp.csr_matrix(y_true) if sparse_truth else y_true
    together = ranking._top_k_hits(labels, y_score, ks)
    for row, k in zip(together, ks):  # several k from one sort = one k at a time
        np.testing.assert_array_equal(row, ranking._top_k_hits(y_true, y_score, [k])[0])
    original = ranking._BLOCK_ENTRIES
    try:
        ranking._BLOCK_ENTRIES = 1  # one row per block
        blocked = ranking._top_k_hits(labels, y_score, ks)
    finally:
        ranking._BLOCK_ENTRIES = original
    np.testing.assert_array_equal(blocked, together)


@DETERMINISTIC
@given(problem=problems(), sparse_truth=st.booleans(), blocks=st.booleans())
def test_mean_average_precision_equals_brute_force(problem, sparse_truth, blocks):
    """Ties are frequent in the drawn scores; rows without a true label are common."""
    y_true, _, y_score = problem
    labels = sp.csr_matrix(y_true) if sparse_truth else y_true
    original = ranking._BLOCK_ENTRIES
    try:
        ranking._BLOCK_ENTRIES = 1 if blocks else original  # one row per block
        value = metrics.mean_average_precision(labels, y_score)
    finally:
        ranking._BLOCK_ENTRIES = original
    assert value == pytest.approx(brute_map(y_true, y_score), abs=1e-12)


@DETERMINISTIC
@given(problem=problems(ties=False))
def test_mean_average_precision_is_sklearn_average_precision_per_row_without_ties(problem):
    y_true, _, y_score = problem
    rows = [i for i in range(len(y_true)) if y_true[i].any()]
    expected = np.mean([skm.average_precision_score(y_true[i], y_score[i]) for i in rows]) if rows else 0.0
    assert metrics.mean_average_precision(y_true, y_score) == pytest.approx(expected, abs=1e-12)


@DETERMINISTIC
@given(problem=problems(), data=st.data())
def test_unranked_true_labels_only_lower_recall_and_map(problem, data):
    """True labels outside the columns (codes a model does not know) are misses."""
    y_true, _, y_score = problem
    extra = np.array(data.draw(st.lists(st.integers(0, 2), min_size=len(y_true), max_size=len(y_true))))
    assert ranking._mean_average_precision_compute(y_true, y_score, extra) == pytest.approx(
        brute_map(y_true, y_score, extra), abs=1e-12
    )
    sizes = y_true.sum(1) + extra
    k = data.draw(st.integers(1, y_true.shape[1] + 1), label="k")
    hits = [sum(labels[j] for j in brute_top_k(s, k)) for labels, s in zip(y_true, y_score)]
    recalls = [h / n for h, n in zip(hits, sizes) if n]
    expected = float(np.mean(recalls)) if recalls else 0.0
    assert ranking._recall_at_k_compute(y_true, y_score, [k], extra)[0] == pytest.approx(expected, abs=1e-12)


def test_mean_average_precision_hand_example_and_difference_from_lrap():
    # gold {0, 2}; ranking 1, 0, 2 (scores), so gold at ranks 2 and 3: AP = (1/2 + 2/3) / 2
    y_true, y_score = np.array([[1, 0, 1, 0]]), np.array([[0.5, 0.9, 0.1, 0.0]])
    assert metrics.mean_average_precision(y_true, y_score) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert metrics.label_ranking_average_precision(y_true, y_score) == pytest.approx((1 / 2 + 2 / 3) / 2)
    # ties: MAP breaks them by column (gold column 1 ranks 2nd), LRAP counts them against (3rd)
    y_true, y_score = np.array([[0, 1, 0]]), np.array([[0.5, 0.5, 0.5]])
    assert metrics.mean_average_precision(y_true, y_score) == pytest.approx(1 / 2)
    assert metrics.label_ranking_average_precision(y_true, y_score) == pytest.approx(1 / 3)
    # rows without truth: MAP leaves them out, LRAP scores them 1
    y_true, y_score = np.array([[1, 0], [0, 0]]), np.array([[0.1, 0.9], [0.1, 0.9]])
    assert metrics.mean_average_precision(y_true, y_score) == pytest.approx(1 / 2)
    assert metrics.label_ranking_average_precision(y_true, y_score) == pytest.approx((1 / 2 + 1) / 2)
    assert metrics.mean_average_precision(np.zeros((2, 2)), y_score) == 0.0


def test_precision_and_recall_at_k_hand_example():
    # row 0: gold {A, C}, ranking C, B, A, D; row 1: gold {D}, ranking D, A, B, C
    y_true = np.array([[1, 0, 1, 0], [0, 0, 0, 1]])
    y_score = np.array([[0.6, 0.7, 0.9, 0.1], [0.3, 0.2, 0.1, 0.8]])
    assert metrics.precision_at_k(y_true, y_score, 1) == 1.0
    assert metrics.precision_at_k(y_true, y_score, 2) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert metrics.precision_at_k(y_true, y_score, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert metrics.recall_at_k(y_true, y_score, 2) == pytest.approx((1 / 2 + 1) / 2)
    assert metrics.mean_average_precision(y_true, y_score) == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)


@DETERMINISTIC
@given(problem=problems(), kind=st.sampled_from(CONTAINERS))
def test_score_metrics_same_for_every_container(problem, kind):
    y_true, _, y_score = problem
    for name in ("ranking_loss", "coverage", "label_ranking_average_precision", "mean_average_precision"):
        function = getattr(metrics, name)
        assert function(to_container(y_true, kind), to_container(y_score, kind)) == function(y_true, y_score)
    assert metrics.precision_at_k(to_container(y_true, kind), to_container(y_score, kind), 2) == metrics.precision_at_k(
        y_true, y_score, 2
    )


def test_torch_scores_with_grad_and_low_precision():
    y_true = torch.tensor([[1, 0, 1], [0, 1, 0]])
    y_score = torch.tensor([[0.9, 0.2, 0.4], [0.3, 0.6, 0.1]], requires_grad=True)
    expected = metrics.label_ranking_average_precision(y_true.numpy(), y_score.detach().numpy())
    assert metrics.label_ranking_average_precision(y_true, y_score) == expected
    assert metrics.label_ranking_average_precision(y_true, y_score.detach().to(torch.bfloat16)) == expected


# ------------------------------------------------------------------ evaluate
@DETERMINISTIC
@given(problem=problems())
def test_evaluate_equals_each_function_and_never_warns(problem):
    y_true, y_pred, y_score = problem
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's UndefinedMetricWarning must not appear
        results = metrics.evaluate(y_true, y_pred, y_score)
    expected = {
        **{name: value for name, value in ours_set_metrics(y_true, y_pred).items() if not name.startswith("micro_p")},
        "ranking_loss": metrics.ranking_loss(y_true, y_score),
        "coverage": metrics.coverage(y_true, y_score),
        "label_ranking_average_precision": metrics.label_ranking_average_precision(y_true, y_score),
        **{f"precision_at_{k}": metrics.precision_at_k(y_true, y_score, k) for k in metrics.DEFAULT_KS},
        **{f"recall_at_{k}": metrics.recall_at_k(y_true, y_score, k) for k in metrics.DEFAULT_KS},
    }
    del expected["micro_recall"]
    assert results == expected
    assert all(type(value) is float for value in results.values())


def test_evaluate_without_scores_has_the_set_metrics_only():
    results = metrics.evaluate([[1, 0], [0, 1]], [[1, 0], [1, 1]])
    assert list(results) == ["subset_accuracy", "hamming_loss", "micro_f1", "macro_f1", "instance_f1", "jaccard"]


def test_evaluate_custom_ks_and_zero_division():
    empty = np.zeros((2, 3))
    results = metrics.evaluate(empty, empty, np.ones((2, 3)), ks=(2,), zero_division=1.0)
    assert results["micro_f1"] == results["macro_f1"] == 1.0
    assert {"precision_at_2", "recall_at_2"} <= set(results) and "precision_at_1" not in results
