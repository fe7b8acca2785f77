"""Readers for texts with label sets in CSV/TSV and JSON Lines files.

CSV/TSV: a header row, then one row per document; the labels column holds the label names
joined by ``separator`` (``"786.2;780.6"``; empty = no label). JSON Lines: one object per
line, ``{"text": "...", "labels": "786.2;780.6"}`` or ``{"text": "...", "labels": ["786.2"]}``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from comorbid.data.dataset import MultiLabelDataset

#: The id column used when none is named and the file has one by this name.
DEFAULT_ID = "id"


def read_csv(
    path: str | Path,
    text_column: str = "text",
    labels_column: str = "labels",
    id_column: str | None = None,
    separator: str = ";",
    delimiter: str | None = None,
) -> MultiLabelDataset:
    """Read texts and label sets from a CSV or TSV file with a header row.

    Args:
        path: the file.
        text_column: the column holding the text.
        labels_column: the column holding the label names joined by ``separator``.
        id_column: the column holding row ids (default: the column ``id`` if there is one,
            else ids ``"0".."N-1"``).
        separator: what joins label names inside one cell.
        delimiter: the field delimiter; default a tab for ``.tsv`` files, else a comma.

    Returns:
        A text dataset; ``label_names`` are the distinct labels, sorted.

    Raises:
        ValueError: empty file, a missing column (the message lists the columns found), a
            row with the wrong number of fields, a repeated id (with the line).
    """
    path = Path(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with _open(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"Expected a header row in {path}, got an empty file")
        header = [name.strip() for name in header]
        if id_column is None and DEFAULT_ID in header:
            id_column = DEFAULT_ID
        wanted = [c for c in (text_column, labels_column, id_column) if c is not None]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise ValueError(
                f"Expected column(s) {missing} in {path} line 1, found columns {header}"
            )
        where = {name: header.index(name) for name in wanted}
        records = []
        for fields in reader:
            if not fields or fields == [""]:
                continue  # blank line
            if len(fields) != len(header):
                raise ValueError(
                    f"Expected {len(header)} fields (as in the header) in {path} line "
                    f"{reader.line_num}, got {len(fields)}"
                )
            records.append(
                (
                    reader.line_num,
                    fields[where[text_column]],
                    _split(fields[where[labels_column]], separator),
                    fields[where[id_column]] if id_column else None,
                )
            )
    return _build(path, records)


def read_jsonl(
    path: str | Path,
    text_column: str = "text",
    labels_column: str = "labels",
    id_column: str | None = None,
    separator: str = ";",
) -> MultiLabelDataset:
    """Read texts and label sets from a JSON Lines file (one JSON object per line).

    A file whose content is one JSON array of such objects is read too.

    Args:
        path: the file.
        text_column: the key holding the text (a string).
        labels_column: the key holding the labels: a string of names joined by ``separator``
            or a list of names (numbers are turned into strings).
        id_column: the key holding row ids (default: the key ``id`` if every object has it,
            else ids ``"0".."N-1"``).
        separator: what joins label names in a string value.

    Returns:
        A text dataset; ``label_names`` are the distinct labels, sorted.

    Raises:
        ValueError: empty file, bad JSON, a line that is not an object, a missing key (with
            the keys found), a value of the wrong type, a repeated id; all with the line.
    """
    path = Path(path)
    with _open(path) as handle:
        text = handle.read()
    objects: list[tuple[int, Any]] = []
    if text.lstrip().startswith("["):
        try:
            array = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"Invalid JSON in {path} line {error.lineno}: {error.msg}") from None
        objects = [(1, item) for item in array]  # one document: no per-item line numbers
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                objects.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"Invalid JSON in {path} line {number}, column {error.colno}: {error.msg}"
                ) from None
    if id_column is None and objects and all(isinstance(o, dict) and DEFAULT_ID in o for _, o in objects):
        id_column = DEFAULT_ID
    records = []
    for number, item in objects:
        if not isinstance(item, dict):
            raise ValueError(f"Expected a JSON object in {path} line {number}, got {type(item).__name__}")
        wanted = [c for c in (text_column, labels_column, id_column) if c is not None]
        missing = [c for c in wanted if c not in item]
        if missing:
            raise ValueError(f"Expected key(s) {missing} in {path} line {number}, found keys {sorted(item)}")
        value = item[text_column]
        if not isinstance(value, str):
            raise ValueError(
                f"Expected a string in {text_column!r} in {path} line {number}, got {type(value).__name__}"
            )
        labels = item[labels_column]
        if isinstance(labels, str):
            names = _split(labels, separator)
        elif isinstance(labels, list) and all(isinstance(v, (str, int, float)) for v in labels):
            names = [str(v).strip() for v in labels if str(v).strip()]
        elif labels is None:
            names = []
        else:
            raise ValueError(
                f"Expected {labels_column!r} to be a string or a list of names in {path} line {number}, "
                f"got {json.dumps(labels)[:60]}"
            )
        records.append((number, value, names, None if id_column is None else str(item[id_column])))
    return _build(path, records)


def _build(path: Path, records: list[tuple[int, str, list[str], str | None]]) -> MultiLabelDataset:
    if not records:
        raise ValueError(f"Expected at least one row in {path}, got none")
    label_names = sorted({name for _, _, names, _ in records for name in names})
    column = {name: j for j, name in enumerate(label_names)}
    labels = np.zeros((len(records), len(label_names)), dtype=np.int8)
    for i, (_, _, names, _) in enumerate(records):
        labels[i, [column[name] for name in names]] = 1
    if records[0][3] is None:
        ids = [str(i) for i in range(len(records))]
    else:
        ids = []
        first_line: dict[str, int] = {}
        for number, _, _, row_id in records:
            if row_id in first_line:
                raise ValueError(
                    f"Expected unique ids in {path}, got {row_id!r} again at line {number} "
                    f"(first at line {first_line[row_id]})"
                )
            first_line[row_id] = number
            ids.append(row_id)
    return MultiLabelDataset(
        ids=ids,
        inputs=[text for _, text, _, _ in records],
        labels=labels,
        label_names=label_names,
        name=path.name.split(".")[0],
    )


def _split(cell: str, separator: str) -> list[str]:
    return [name.strip() for name in cell.split(separator) if name.strip()]


def _open(path: Path):
    try:
        # utf-8-sig drops a byte-order mark, which spreadsheet programs like to write.
        return open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise ValueError(f"No such file: {path}") from None


__all__ = ["read_csv", "read_jsonl"]
