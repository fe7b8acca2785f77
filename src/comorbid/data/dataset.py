"""The one container every reader returns and every model consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from comorbid.data.labels import align_columns


@dataclass
class MultiLabelDataset:
    """Inputs with a binary label matrix.

    Attributes:
        ids: one identifier per row, ``[N]`` (strings).
        inputs: either a list of ``N`` texts, or a feature matrix ``[N, D]`` (dense
            ``np.ndarray`` or ``scipy.sparse`` CSR, float).
        labels: ``[N, M]`` ``np.int8`` matrix of 0/1.
        label_names: ``[M]`` names, in column order.
        feature_names: ``[D]`` names for a feature matrix, ``None`` for text.
        extras: per-row side information that a reader keeps (for CMC 2007 the
            annotators' own codes, under ``"annotator_codes"``: ``{origin: [N] lists of
            codes}``, turned into ``[N, M]`` matrices by ``comorbid.data.annotator_labels``,
            and the report sections, under ``"sections"``: a list of ``{section: text}``).
        name: a short name for reports.
    """

    ids: list[str]
    inputs: Any
    labels: np.ndarray
    label_names: list[str]
    feature_names: list[str] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    name: str = "dataset"

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int8)
        if self.labels.ndim != 2:
            raise ValueError(f"Expected `labels` to be [N, M], got shape {self.labels.shape}")
        n, m = self.labels.shape
        if len(self.ids) != n:
            raise ValueError(f"Expected {n} ids (one per label row), got {len(self.ids)}")
        if len(self.label_names) != m:
            raise ValueError(f"Expected {m} label names, got {len(self.label_names)}")
        if n_inputs(self.inputs) != n:
            raise ValueError(f"Expected {n} inputs (one per label row), got {n_inputs(self.inputs)}")
        bad = np.argwhere((self.labels != 0) & (self.labels != 1))
        if len(bad):
            r, c = bad[0]
            raise ValueError(f"Expected `labels` to contain only 0/1, got {self.labels[r, c]} at row {r}")

    @property
    def is_text(self) -> bool:
        return isinstance(self.inputs, list)

    @property
    def n_labels(self) -> int:
        return self.labels.shape[1]

    def __len__(self) -> int:
        return self.labels.shape[0]

    def subset(self, rows: Sequence[int] | np.ndarray) -> "MultiLabelDataset":
        """Rows ``rows`` of this dataset (labels and label names unchanged)."""
        rows = np.asarray(rows, dtype=np.int64)
        inputs = [self.inputs[i] for i in rows] if self.is_text else self.inputs[rows]
        extras = {key: _take(value, rows) for key, value in self.extras.items()}
        return MultiLabelDataset(
            ids=[self.ids[i] for i in rows],
            inputs=inputs,
            labels=self.labels[rows],
            label_names=list(self.label_names),
            feature_names=self.feature_names,
            extras=extras,
            name=self.name,
        )

    def with_label_names(self, label_names: Sequence[str]) -> "MultiLabelDataset":
        """The same rows with label columns re-ordered to ``label_names``.

        Names this dataset lacks become all-zero columns; names it has that are not in
        ``label_names`` are dropped (:func:`comorbid.data.labels.align_columns`). Used to evaluate a
        trained model on new data.
        """
        labels = align_columns(self.labels, self.label_names, label_names)
        if labels is self.labels:  # same names: still a dataset of its own
            labels = labels.copy()
        return MultiLabelDataset(
            self.ids, self.inputs, labels, list(label_names), self.feature_names, dict(self.extras), self.name
        )


def n_inputs(inputs: Any) -> int:
    if isinstance(inputs, list):
        return len(inputs)
    if sp.issparse(inputs) or isinstance(inputs, np.ndarray):
        return inputs.shape[0]
    raise TypeError(f"Expected `inputs` to be a list of texts or a feature matrix, got {type(inputs).__name__}")


def _take(value: Any, rows: np.ndarray) -> Any:
    if isinstance(value, dict):
        return {key: _take(inner, rows) for key, inner in value.items()}
    if isinstance(value, list):
        return [value[i] for i in rows]
    if isinstance(value, np.ndarray) or sp.issparse(value):
        return value[rows]
    return value
