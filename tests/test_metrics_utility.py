"""Per-row utilities: brute force over all pairs of label sets, and mean = functional metric."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import CONTAINERS, DETERMINISTIC, label_matrix_pairs, to_container

from comorbid import metrics
from comorbid.metrics import UTILITIES, mean_utility, utility


def python_utility(name: str, a: frozenset, b: frozenset, n_labels: int) -> float:
    """The definitions, on Python sets."""
    if name == "hamming":
        return 1 - len(a ^ b) / n_labels
    if name == "subset":
        return float(a == b)
    if name == "instance-f1":
        return 1.0 if not a and not b else 2 * len(a & b) / (len(a) + len(b))
    if name == "jaccard":
        return 1.0 if not a and not b else len(a & b) / len(a | b)
    raise AssertionError(name)


#: The functional metric that the mean of each utility equals.
METRIC_OF_UTILITY = {
    "hamming": lambda y_true, y_pred: 1.0 - metrics.hamming_loss(y_true, y_pred),
    "subset": metrics.subset_accuracy,
    "instance-f1": metrics.instance_f1,
    "jaccard": metrics.jaccard,
}


def test_registry_lists_every_utility_once():
    assert set(UTILITIES) == set(METRIC_OF_UTILITY) == {"hamming", "subset", "instance-f1", "jaccard"}


@pytest.mark.parametrize("name", sorted(UTILITIES))
@pytest.mark.parametrize("n_labels", [1, 2, 3, 4])
def test_utility_of_every_pair_of_sets_equals_the_definition(name, n_labels):
    sets = torch.tensor(list(itertools.product([0, 1], repeat=n_labels)), dtype=torch.float64)  # [2^M, M]
    table = utility(name, sets[:, None, :], sets[None, :, :])  # broadcast to [2^M, 2^M]
    assert table.shape == (2**n_labels, 2**n_labels) and table.dtype == torch.float64
    as_sets = [frozenset(np.flatnonzero(row.numpy()).tolist()) for row in sets]
    expected = torch.tensor([[python_utility(name, a, b, n_labels) for b in as_sets] for a in as_sets], dtype=torch.float64)
    torch.testing.assert_close(table, expected, rtol=0, atol=1e-15)


@DETERMINISTIC
@given(pair=label_matrix_pairs(), name=st.sampled_from(sorted(UTILITIES)), kind=st.sampled_from(CONTAINERS))
def test_mean_utility_equals_the_functional_metric(pair, name, kind):
    y_true, y_pred = pair
    expected = METRIC_OF_UTILITY[name](y_true, y_pred)
    got = mean_utility(name, to_container(y_pred, kind), to_container(y_true, kind))
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)  # differences: order of float sums


@pytest.mark.parametrize("name", sorted(UTILITIES))
def test_utility_broadcasts_leading_dimensions(name):
    generator = torch.Generator().manual_seed(0)
    candidates = torch.randint(0, 2, (7, 1, 1, 5), generator=generator)
    truths = torch.randint(0, 2, (3, 4, 5), generator=generator)
    table = utility(name, candidates, truths)
    assert table.shape == (7, 3, 4)
    assert table[6, 2, 1] == utility(name, candidates[6, 0, 0], truths[2, 1])


@pytest.mark.parametrize("name", sorted(UTILITIES))
def test_dtypes(name):
    y_hat = torch.tensor([[1, 0, 1], [0, 0, 0]])
    y = torch.tensor([[1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    assert utility(name, y_hat, y).dtype == torch.get_default_dtype()
    assert utility(name, y_hat.double(), y).dtype == torch.float64
    assert utility(name, y_hat.half(), y.double()).dtype == torch.float64


@pytest.mark.parametrize("name", ["instance-f1", "jaccard"])
def test_empty_sets_give_one_and_finite_gradients(name):
    y_hat = torch.zeros(2, 3, requires_grad=True)
    y = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    values = UTILITIES[name](y_hat, y)
    assert values.tolist() == [1.0, 0.0]
    values.sum().backward()
    assert torch.isfinite(y_hat.grad).all()


def test_unknown_name():
    with pytest.raises(ValueError, match=re.escape("Expected a utility name in ['hamming', 'instance-f1', 'jaccard', 'subset'], got 'precision@k'")):
        utility("precision@k", torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="Expected a utility name"):
        mean_utility("f1", [[0, 1]], [[0, 1]])


def test_shape_errors():
    with pytest.raises(ValueError, match=re.escape("same number of labels M in the last dimension, got shapes (2, 3) and (2, 4)")):
        utility("hamming", torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=re.escape("to broadcast over leading dimensions, got shapes (2, 3) and (4, 3)")):
        utility("hamming", torch.zeros(2, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=re.escape("Expected `y_hat` to have the shape of `y` (1, 2), got (1, 3)")):
        mean_utility("hamming", [[0, 1, 1]], [[0, 1]])


def test_values_must_be_0_or_1():
    with pytest.raises(ValueError, match=re.escape("Expected `y` to contain only 0/1, got 2 at index [1, 0]")):
        utility("subset", torch.zeros(2, 3), torch.tensor([[0, 1, 0], [2, 0, 0]]))
    with pytest.raises(ValueError, match=re.escape("Expected `y_hat` to contain only 0/1, got 3 at row 0, column 1")):
        mean_utility("subset", [[0, 3]], [[0, 1]])
    # validate_args=False skips the check (for decoders' inner loops) and gives the relaxation
    assert utility("hamming", torch.tensor([0.5]), torch.tensor([1.0]), validate_args=False) == 0.5


@DETERMINISTIC
@given(pair=label_matrix_pairs(), name=st.sampled_from(sorted(UTILITIES)))
def test_utility_table_from_counts_equals_the_elementwise_utility(pair, name):
    from comorbid.metrics.utility import utility_table

    y_true, y_pred = (torch.as_tensor(m, dtype=torch.float64) for m in pair)
    table = utility_table(name, y_pred, y_true)  # [K, S] by one matrix product
    torch.testing.assert_close(table, utility(name, y_pred[:, None, :], y_true[None, :, :]), rtol=0, atol=1e-15)
    # on a subset of columns holding every set label, with the full M given, nothing changes
    used = np.flatnonzero((pair[0] + pair[1]).sum(0) > 0)
    if used.size:
        restricted = utility_table(name, y_pred[:, used], y_true[:, used], n_labels=y_true.shape[1])
        torch.testing.assert_close(restricted, table, rtol=0, atol=1e-15)
