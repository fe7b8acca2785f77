"""Readers, the dataset container, splits, the dataset registry and synthetic data.

Readers know nothing of torch: everything here returns numpy/scipy arrays and lists.
"""

from comorbid.data.arff import read_arff, read_mulan_labels
from comorbid.data.cmc import annotator_labels, read_cmc_xml
from comorbid.data.dataset import MultiLabelDataset
from comorbid.data.paths import data_root
from comorbid.data.readers import load_dataset
from comorbid.data.registry import DATASETS, RegisteredDataset, resolve
from comorbid.data.splits import kfold_indices, train_validation_split
from comorbid.data.synthetic import (
    bayes_optimal_subset_accuracy,
    dependent_label_problem,
    expected_subset_accuracy,
    parity_label_problem,
    synthetic_coding_set,
    synthetic_icd10_set,
)
from comorbid.data.tabular import read_csv, read_jsonl

__all__ = [
    "DATASETS",
    "MultiLabelDataset",
    "RegisteredDataset",
    "annotator_labels",
    "bayes_optimal_subset_accuracy",
    "data_root",
    "dependent_label_problem",
    "expected_subset_accuracy",
    "kfold_indices",
    "load_dataset",
    "parity_label_problem",
    "read_arff",
    "read_cmc_xml",
    "read_csv",
    "read_jsonl",
    "read_mulan_labels",
    "resolve",
    "synthetic_coding_set",
    "synthetic_icd10_set",
    "train_validation_split",
]
