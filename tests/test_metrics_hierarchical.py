"""tree_cost equals the mbr=icd-tree decoder's cost; hierarchical F1 equals scikit-learn's micro-F1
of brute-force ancestor-augmented matrices."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from strategies import CONTAINERS, DETERMINISTIC, label_matrix_pairs, to_container

from comorbid import icd, metrics
from comorbid.decoders.costs import IcdTreeCost
from comorbid.icd import LabelHierarchy
from comorbid.metrics.hierarchical import _ancestor_table, _diameter, hierarchical_f1, tree_cost

# siblings, parents and children, other chapters, V codes, and one code missing from the table
# ("786.20": placed under its structural parent 786.2)
ICD9 = ["786.2", "786.07", "786", "786.20", "486", "493.90", "599.0", "V13.02", "V42.81", "780.6", "591", "250.00"]
ICD10 = ["J18.9", "J18", "R05", "R50.9", "I10", "E11.9", "N39.0", "J45.909", "K21.9", "Z79.4"]


@st.composite
def icd_problems(draw, max_rows: int = 8):
    """``(y_true, y_pred, label_names)`` over a drawn subset of one system's codes."""
    pool = draw(st.sampled_from((ICD9, ICD10)))
    names = draw(st.permutations(pool))[: draw(st.integers(1, len(pool)))]
    n_rows = draw(st.integers(1, max_rows))
    y_true, y_pred = draw(label_matrix_pairs(shape=(n_rows, len(names))))
    return y_true, y_pred, names


def flat_hierarchy(names) -> LabelHierarchy:
    """Every label directly under the root: ``Anc(j) = {j}``."""
    m = len(names)
    return LabelHierarchy(label_names=list(names), n_original=m, matrix=np.eye(m, dtype=bool),
                          parent=np.full(m, -1, dtype=np.int64), system="icd9")


# ------------------------------------------------------------------ tree_cost
@DETERMINISTIC
@given(icd_problems())
def test_tree_cost_is_the_mean_cost_of_the_icd_tree_decoder(problem):
    y_true, y_pred, names = problem
    cost = IcdTreeCost().bind(names)  # what mbr=icd-tree minimises
    per_row = cost(torch.tensor(y_pred, dtype=torch.float64), torch.tensor(y_true, dtype=torch.float64)).diagonal()
    assert math.isclose(tree_cost(y_true, y_pred, names), per_row.mean().item(), rel_tol=1e-12, abs_tol=1e-12)


@DETERMINISTIC
@given(icd_problems())
def test_tree_cost_equals_a_brute_force_over_tree_distances(problem):
    y_true, y_pred, names = problem
    system = icd.detect_system(names)
    largest = max(icd.tree_distance(a, b, system) for a in names for b in names) or 1

    def d(a, b):
        return icd.tree_distance(names[a], names[b], system) / largest

    total = 0.0
    for truth, guess in zip(y_true, y_pred):
        true_set, pred_set = np.flatnonzero(truth), np.flatnonzero(guess)
        total += sum(min((d(a, b) for b in true_set), default=1.0) for a in pred_set)
        total += sum(min((d(a, b) for a in pred_set), default=1.0) for b in true_set)
    assert math.isclose(tree_cost(y_true, y_pred, names), total / len(y_true), rel_tol=1e-12, abs_tol=1e-12)


@settings(DETERMINISTIC, max_examples=30)
@given(st.sampled_from((ICD9, ICD10)), st.data())
def test_the_double_sweep_diameter_is_the_largest_tree_distance(pool, data):
    names = data.draw(st.permutations(pool))[: data.draw(st.integers(1, len(pool)))]
    table, sizes = _ancestor_table(icd.expand_with_ancestors(names))
    assert _diameter(table, sizes) == icd.cost_matrix(names, normalize=False).max()


@DETERMINISTIC
@given(icd_problems(), st.sampled_from(CONTAINERS))
def test_tree_cost_takes_every_container(problem, kind):
    y_true, y_pred, names = problem
    expected = tree_cost(y_true, y_pred, names)
    assert tree_cost(to_container(y_true, kind), to_container(y_pred, kind), names) == pytest.approx(expected, abs=1e-12)


@DETERMINISTIC
@given(label_matrix_pairs(max_labels=6))
def test_with_a_flat_hierarchy_tree_cost_counts_wrong_labels(pair):
    y_true, y_pred = pair
    names = ICD9[: y_true.shape[1]]
    expected = y_true.shape[1] * metrics.hamming_loss(y_true, y_pred)  # mean |P xor Y|
    assert tree_cost(y_true, y_pred, flat_hierarchy(names)) == pytest.approx(expected, abs=1e-12)


def test_a_sibling_costs_less_than_a_code_of_another_chapter():
    names = ["786.2", "786.07", "486"]  # d = 3, 7, 8
    truth = [[1, 0, 0]]
    assert tree_cost(truth, [[0, 1, 0]], names) == pytest.approx(6 / 8)
    assert tree_cost(truth, [[0, 0, 1]], names) == pytest.approx(14 / 8)
    assert tree_cost(truth, [[0, 0, 0]], names) == 1.0  # a missed code pays the largest cost
    assert tree_cost([[0, 0, 0]], [[0, 0, 0]], names) == 0.0


def test_tree_cost_needs_no_label_by_label_matrix():
    """At M = 3,000 labels an [M, M] float64 matrix is 72 MB; the metric stays far below."""
    names = [f"{100 + i // 10:03d}.{i % 10}" for i in range(3000)]  # 300 categories of 10 codes
    rng = np.random.default_rng(0)
    y_true = sp.random(200, len(names), density=0.003, random_state=rng, format="csr")
    y_pred = sp.random(200, len(names), density=0.003, random_state=rng, format="csr")
    y_true.data[:], y_pred.data[:] = 1, 1
    hierarchy = icd.expand_with_ancestors(names)
    tracemalloc.start()
    try:
        value = tree_cost(y_true, y_pred, hierarchy)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 0 < value and peak < len(names) ** 2 * 8 / 10


# ------------------------------------------------------------------ hierarchical F1
def augmented(y, names):
    """Brute force: each row's codes together with all their ancestors (root left out), as an
    indicator matrix over every node met."""
    system = icd.detect_system(names)
    lineage = [icd.ancestors(name, system, strict=False) for name in names]
    nodes = sorted({node for path in lineage for node in path})
    column = {node: k for k, node in enumerate(nodes)}
    out = np.zeros((len(y), len(nodes)), dtype=np.int8)
    for i, row in enumerate(y):
        for j in np.flatnonzero(row):
            out[i, [column[node] for node in lineage[j]]] = 1
    return out


@DETERMINISTIC
@given(icd_problems(), st.sampled_from((0.0, 1.0)))
def test_hierarchical_scores_equal_sklearn_on_augmented_sets(problem, zero_division):
    y_true, y_pred, names = problem
    true_aug, pred_aug = augmented(y_true, names), augmented(y_pred, names)
    true_aug, pred_aug = np.hstack([true_aug, 0 * true_aug[:, :1]]), np.hstack([pred_aug, 0 * pred_aug[:, :1]])  # >= 2 columns
    for ours, theirs in ((metrics.hierarchical_f1, skm.f1_score), (metrics.hierarchical_precision, skm.precision_score),
                         (metrics.hierarchical_recall, skm.recall_score)):
        expected = theirs(true_aug, pred_aug, average="micro", zero_division=zero_division)
        assert ours(y_true, y_pred, names, zero_division=zero_division) == pytest.approx(expected, abs=1e-12)


@DETERMINISTIC
@given(label_matrix_pairs(max_labels=6), st.sampled_from(CONTAINERS))
def test_with_a_flat_hierarchy_hierarchical_f1_is_micro_f1(pair, kind):
    y_true, y_pred = pair
    hierarchy = flat_hierarchy(ICD9[: y_true.shape[1]])
    value = hierarchical_f1(to_container(y_true, kind), to_container(y_pred, kind), hierarchy)
    assert value == pytest.approx(metrics.micro_f1(y_true, y_pred), abs=1e-12)


def test_a_sibling_earns_partial_credit():
    names = ["786.2", "786.07"]  # share 786, 780-789, 780-799
    assert metrics.micro_f1([[1, 0]], [[0, 1]]) == 0.0
    assert hierarchical_f1([[1, 0]], [[0, 1]], names) == pytest.approx(2 * 3 / (4 + 5))
    assert metrics.hierarchical_precision([[1, 0]], [[0, 1]], names) == pytest.approx(3 / 5)
    assert metrics.hierarchical_recall([[1, 0]], [[0, 1]], names) == pytest.approx(3 / 4)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("function", [tree_cost, hierarchical_f1])
def test_errors_name_the_problem(function):
    with pytest.raises(ValueError, match="name each of the 3 label columns, got 2"):
        function([[1, 0, 0]], [[1, 0, 0]], ["786.2", "486"])
    with pytest.raises(ValueError, match="Expected ICD-9-CM or ICD-10-CM codes"):
        function([[1, 0]], [[1, 0]], ["pneumonia", "cough"])
    with pytest.raises(ValueError, match="only 0/1, got 2"):
        function([[1, 0]], [[2, 0]], ["786.2", "486"])
