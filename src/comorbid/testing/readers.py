"""Conformance checks every data reader must pass (run over ``tests/examples.py``'s ``READERS``).

A reader is a function ``path, **options -> MultiLabelDataset`` listed under a file name ending
in :data:`comorbid.data.readers.READERS`; :func:`comorbid.data.load_dataset` picks it by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from comorbid.data.dataset import MultiLabelDataset
from comorbid.data.readers import load_dataset


@dataclass
class ReaderExample:
    """A small valid file for the reader of ``suffix``, and what reading it must give.

    Attributes:
        suffix: the file name ending (a key of ``READERS``).
        content: the file's bytes.
        label_names: the label columns expected, in order.
        n_rows: the rows expected.
        options: keyword options of :func:`load_dataset` the file needs.
    """

    suffix: str
    content: bytes
    label_names: list[str]
    n_rows: int
    options: dict[str, Any] = field(default_factory=dict)

    def write(self, folder: Path, stem: str = "example") -> Path:
        path = Path(folder) / f"{stem}{self.suffix}"
        path.write_bytes(self.content)
        return path

    def __repr__(self) -> str:
        return self.suffix


def check_reads(example: ReaderExample, folder: Path) -> MultiLabelDataset:
    """``load_dataset`` picks the reader by the ending and returns the expected dataset; reading
    the same file twice gives the same dataset."""
    path = example.write(folder)
    data = load_dataset(path, **example.options)
    assert isinstance(data, MultiLabelDataset), f"{example.suffix}: expected a MultiLabelDataset, got {type(data)}"
    assert data.label_names == example.label_names, f"{example.suffix}: label names {data.label_names}"
    assert len(data) == example.n_rows, f"{example.suffix}: {len(data)} rows, expected {example.n_rows}"
    assert data.labels.dtype == np.int8 and set(np.unique(data.labels)) <= {0, 1}
    assert len(set(data.ids)) == len(data.ids), f"{example.suffix}: ids repeat: {data.ids}"
    again = load_dataset(path, **example.options)
    assert again.ids == data.ids and np.array_equal(again.labels, data.labels)
    return data


def check_bad_bytes_name_the_file(example: ReaderExample, folder: Path) -> None:
    """Bytes that are not the format (here: not even UTF-8) are a ValueError naming the file,
    what the CLI turns into one line and exit code 2 -- never another exception type."""
    path = Path(folder) / f"garbage{example.suffix}"
    path.write_bytes(b"\xff\xfe\x00\x80 not a data file \x81\xfe")
    try:
        load_dataset(path, **example.options)
    except ValueError as error:
        assert str(path) in str(error) or path.name in str(error), f"{example.suffix}: error lacks the file: {error}"
    else:
        raise AssertionError(f"{example.suffix}: reading garbage bytes raised nothing")
