"""Readers for texts with label sets in CSV/TSV and JSON Lines files.

CSV/TSV: a header row, then one row per document; the labels column holds the label names
joined by ``separator`` (``"786.2;780.6"``; empty = no label). JSON Lines: one object per
line, ``{"text": "...", "labels": "786.2;780.6"}`` or ``{"text": "...", "labels": ["786.2"]}``.

Files are UTF-8, or gzip-compressed UTF-8 when the name ends in ``.gz`` (``notes.csv.gz``). With
``require_labels=False`` the labels column may be missing (new, uncoded notes to predict): the
dataset then has zero label columns, as a CMC 2007 file without codes.

When most labels cells contain ``,`` or ``|`` and ``separator`` is another
character, the readers warn (``UserWarning``): the labels are probably joined by that character
and each cell would otherwise become one long label name.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from comorbid.data.dataset import MultiLabelDataset

#: The id column used when none is named and the file has one by this name.
DEFAULT_ID = "id"
#: The longest CSV field read, in characters: 2**27 (128 Mi), a thousand times the csv module's
#: default. A bound rather than ``sys.maxsize``, which overflows the C long the csv module
#: stores it in on some platforms (Windows).
MAX_FIELD = 2**27
#: Characters that often join label names when the file's separator is another one.
LIKELY_SEPARATORS = (",", "|")


def read_csv(
    path: str | Path,
    text_column: str = "text",
    labels_column: str = "labels",
    id_column: str | None = None,
    separator: str = ";",
    delimiter: str | None = None,
    require_labels: bool = True,
) -> MultiLabelDataset:
    """Read texts and label sets from a CSV or TSV file with a header row.

    Args:
        path: the file.
        text_column: the column holding the text.
        labels_column: the column holding the label names joined by ``separator``.
        id_column: the column holding row ids (default: the column ``id`` if there is one,
            else ids ``"0".."N-1"``).
        separator: what joins label names inside one cell.
        delimiter: the field delimiter; default a tab for ``.tsv`` (``.tsv.gz``) files, else a comma.
        require_labels: when False, a file without the labels column is read with no labels
            (``[N, 0]``): notes to predict.

    Returns:
        A text dataset; ``label_names`` are the distinct labels, sorted.

    Raises:
        ValueError: empty file, a missing column (the message lists the columns found), a
            row with the wrong number of fields, a stray or unclosed quote, a byte that is not
            UTF-8, a repeated id (with the line). Fields may be up to :data:`MAX_FIELD`
            characters long (long notes are fine).
    """
    path = Path(path)
    if delimiter is None:
        delimiter = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    # strict: a stray or unclosed quote is an error, not a field that silently swallows the
    # rows after it.
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), delimiter=delimiter, strict=True)
    with _long_fields():
        try:
            records, cells = _csv_rows(path, reader, text_column, labels_column, id_column, separator,
                                       require_labels)
        except csv.Error as error:
            raise ValueError(f"Malformed CSV in {path} line {reader.line_num}: {error}") from None
    _warn_if_joined(path, cells, separator)
    return _build(path, records)


def _csv_rows(path: Path, reader, text_column: str, labels_column: str, id_column: str | None, separator: str,
              require_labels: bool = True):
    """The records for :func:`_build` and the ``(line, labels cell)`` of every row."""
    header = next(reader, None)
    if header is None:
        raise ValueError(f"Expected a header row in {path}, got an empty file")
    header = [name.strip() for name in header]
    if id_column is None and DEFAULT_ID in header:
        id_column = DEFAULT_ID
    if not require_labels and labels_column not in header:
        labels_column = None
    wanted = [c for c in (text_column, labels_column, id_column) if c is not None]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise ValueError(f"Expected column(s) {missing} in {path} line 1, found columns {header}")
    where = {name: header.index(name) for name in wanted}
    records, cells = [], []
    for fields in reader:
        if not fields or fields == [""]:
            continue  # blank line
        if len(fields) != len(header):
            raise ValueError(
                f"Expected {len(header)} fields (as in the header) in {path} line "
                f"{reader.line_num}, got {len(fields)}"
            )
        cell = fields[where[labels_column]] if labels_column else ""
        cells.append((reader.line_num, cell))
        records.append(
            (
                reader.line_num,
                fields[where[text_column]],
                _split(cell, separator),
                fields[where[id_column]] if id_column else None,
            )
        )
    return records, cells


@contextmanager
def _long_fields():
    """Let the csv module read fields up to :data:`MAX_FIELD` characters, then restore its limit.

    The csv module's default limit (131,072 characters) is below the length of some clinical
    notes (discharge summaries). The limit is process-wide state of the csv module, so it is
    raised only while a file is read and restored afterwards, leaving other users of ``csv``
    as they were.
    """
    previous = csv.field_size_limit(MAX_FIELD)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def read_jsonl(
    path: str | Path,
    text_column: str = "text",
    labels_column: str = "labels",
    id_column: str | None = None,
    separator: str = ";",
    require_labels: bool = True,
) -> MultiLabelDataset:
    """Read texts and label sets from a JSON Lines file (one JSON object per line).

    A file whose content is one JSON array of such objects is read too.

    Args:
        path: the file.
        text_column: the key holding the text (a string).
        labels_column: the key holding the labels: a string of names joined by ``separator``,
            a list of names, or null (no label). Names must be JSON strings: a number is an
            error, since JSON reads ``493.90`` as ``493.9``.
        id_column: the key holding row ids (default: the key ``id`` if every object has it,
            else ids ``"0".."N-1"``).
        separator: what joins label names in a string value.
        require_labels: when False, objects without the labels key have no label (a file
            where no object has it reads as ``[N, 0]``): notes to predict.

    Returns:
        A text dataset; ``label_names`` are the distinct labels, sorted.

    Raises:
        ValueError: empty file, bad JSON, a byte that is not UTF-8, a line that is not an
            object, a missing key (with the keys found), a value of the wrong type (a label that
            is a number, boolean, null or list included), a repeated id; all with the line.
    """
    path = Path(path)
    text = _read_text(path)
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
    records, cells = [], []
    for number, item in objects:
        if not isinstance(item, dict):
            raise ValueError(f"Expected a JSON object in {path} line {number}, got {type(item).__name__}")
        wanted = [c for c in (text_column, labels_column, id_column) if c is not None]
        if not require_labels:
            wanted.remove(labels_column)
        missing = [c for c in wanted if c not in item]
        if missing:
            raise ValueError(f"Expected key(s) {missing} in {path} line {number}, found keys {sorted(item)}")
        value = item[text_column]
        if not isinstance(value, str):
            raise ValueError(
                f"Expected a string in {text_column!r} in {path} line {number}, got {type(value).__name__}"
            )
        labels = item.get(labels_column)
        if isinstance(labels, str):
            cells.append((number, labels))
        names = _json_labels(labels, separator, labels_column, f"{path} line {number}")
        records.append((number, value, names, None if id_column is None else str(item[id_column])))
    _warn_if_joined(path, cells, separator)
    return _build(path, records)


def _json_labels(labels: Any, separator: str, column: str, where: str) -> list[str]:
    """Label names from a JSON value: a string joined by ``separator``, a list of strings, or null.

    Numbers are refused rather than turned into strings: JSON has already spelt ``493.90`` as
    ``493.9`` and ``0.10`` as ``0.1`` before we see them, which are other (or no) ICD codes.
    """
    if labels is None:
        return []
    if isinstance(labels, str):
        return _split(labels, separator)
    if not isinstance(labels, list):
        raise ValueError(
            f"Expected {column!r} to be a string or a list of names in {where}, got {_describe(labels)}"
        )
    for value in labels:
        if not isinstance(value, str):
            hint = "; quote them" if _describe(value).startswith("the number") else ""
            raise ValueError(
                f"Expected label names as strings in {column!r} in {where}, got {_describe(value)}{hint}"
            )
    return [name.strip() for name in labels if name.strip()]


def _describe(value: Any) -> str:
    """``the number 493.9``, ``true``, ``null``, ``a list [...]``: a JSON value for an error."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return f"the number {json.dumps(value)}"
    kind = "a list" if isinstance(value, list) else "an object"
    return f"{kind} {json.dumps(value)[:60]}"


def _warn_if_joined(path: Path, cells: list[tuple[int, str]], separator: str) -> None:
    """Warn when most labels cells look joined by another character than ``separator``.

    ``"486,786.2"`` read with the separator ``;`` is one label named ``486,786.2``: a model
    trains happily on such names, so say so rather than let every code set become one code.
    """
    filled = [(line, cell) for line, cell in cells if cell.strip()]
    for candidate in LIKELY_SEPARATORS:
        if candidate == separator:
            continue
        joined = [(line, cell) for line, cell in filled if candidate in cell]
        if filled and 2 * len(joined) > len(filled):
            line, cell = joined[0]
            warnings.warn(
                f"{path}: {len(joined)} of {len(filled)} label cells contain {candidate!r} (line {line}: "
                f"{cell[:40]!r}) but label names are split at {separator!r}; if {candidate!r} joins "
                f"the labels, say so with --label-separator {candidate!r} (separator={candidate!r})",
                stacklevel=3,
            )
            return
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


def _read_text(path: Path) -> str:
    """The file's text, UTF-8 (a byte-order mark, which spreadsheet programs like to write, is
    dropped); an undecodable byte is an error naming its line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"No such file: {path}") from None
    if path.name.lower().endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"Could not read {path}: not a complete gzip file ({error})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise ValueError(
            f"Expected UTF-8 text in {path} line {line}, got the byte 0x{raw[error.start]:02x} "
            f"(save the file as UTF-8)"
        ) from None


__all__ = ["read_csv", "read_jsonl"]
