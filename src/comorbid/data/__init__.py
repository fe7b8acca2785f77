"""Readers, the dataset container, splits and synthetic data."""

from comorbid.data.dataset import MultiLabelDataset

__all__ = ["MultiLabelDataset"]
