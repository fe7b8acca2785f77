"""comorbid.data.labels: the one helper that lines label columns up by name."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import comorbid.data.labels
from comorbid.data.dataset import MultiLabelDataset
from comorbid.data.labels import align_columns, names_with_unknown


def test_docstring_example():
    result = doctest.testmod(comorbid.data.labels, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_reorders_drops_and_zero_fills():
    matrix = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    got = align_columns(matrix, ["a", "b", "c"], ["c", "x", "a"])
    np.testing.assert_array_equal(got, [[0.3, 0.0, 0.1], [0.6, 0.0, 0.4]])
    assert got.dtype == matrix.dtype


def test_same_names_return_the_matrix_itself():
    matrix = np.ones((2, 2), dtype=np.int8)
    assert align_columns(matrix, ["a", "b"], ("a", "b")) is matrix
    assert align_columns(matrix, ["a", "b"], ["a", "b"], dtype=np.float64).dtype == np.float64


def test_wrong_width_names_the_shapes():
    with pytest.raises(ValueError, match=r"Expected a matrix \[N, 3\].*\(2, 2\)"):
        align_columns(np.zeros((2, 2)), ["a", "b", "c"], ["a"])


def test_names_with_unknown_keep_the_model_order():
    assert names_with_unknown(["b", "a"], ["z", "a", "y"]) == (["b", "a", "y", "z"], ["y", "z"])


def test_with_label_names_uses_it_and_copies():
    dataset = MultiLabelDataset(["r0", "r1"], ["x", "y"], np.array([[1, 0], [0, 1]]), ["a", "b"])
    same = dataset.with_label_names(["a", "b"])
    assert same.labels is not dataset.labels
    np.testing.assert_array_equal(same.labels, dataset.labels)
    moved = dataset.with_label_names(["b", "c", "a"])
    np.testing.assert_array_equal(moved.labels, [[0, 0, 1], [1, 0, 0]])
    assert moved.labels.dtype == np.int8 and moved.label_names == ["b", "c", "a"]
