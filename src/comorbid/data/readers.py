"""One entry point for every reader: ``load_dataset(path_or_name)``."""

from __future__ import annotations

import csv
import zlib
from pathlib import Path
from typing import Callable, NamedTuple
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import ExpatError

from arff import ArffException

from comorbid.data.arff import read_arff
from comorbid.data.cmc import read_cmc_xml
from comorbid.data.dataset import MultiLabelDataset
from comorbid.data.registry import DATASETS, names, resolve
from comorbid.data.tabular import read_csv, read_jsonl

#: What a parser under a reader raises on bad input (undecodable bytes, a truncated archive,
#: broken markup, runaway nesting) rather than on a bug; see ``_read``.
INPUT_ERRORS = (
    ValueError, csv.Error, EOFError, OSError, zlib.error, ExpatError, ParseError, ArffException, RecursionError
)


class Reader(NamedTuple):
    """A reader function and the keyword options of :func:`load_dataset` that it takes."""

    read: Callable[..., MultiLabelDataset]
    options: tuple[str, ...] = ()


_ARFF = ("labels_xml", "n_labels")
_TABULAR = ("text_column", "labels_column", "id_column", "separator")

#: File name ending -> what reads it. One line per ending; :func:`load_dataset` picks the
#: longest ending a name has. Adding a reader = its module + its lines here + an example in
#: ``tests/test_registries.py``'s ``READER_EXAMPLES`` (a test fails without one).
READERS: dict[str, Reader] = {
    ".xml": Reader(read_cmc_xml),
    ".arff": Reader(read_arff, _ARFF),
    ".arff.gz": Reader(read_arff, _ARFF),
    ".arff.bz2": Reader(read_arff, _ARFF),
    ".csv": Reader(read_csv, _TABULAR),
    ".tsv": Reader(read_csv, _TABULAR),
    ".jsonl": Reader(read_jsonl, _TABULAR),
    ".json": Reader(read_jsonl, _TABULAR),
}
#: File name endings that :func:`load_dataset` knows.
SUFFIXES = tuple(READERS)


def reader_for(path: str | Path) -> Reader | None:
    """The reader of ``path`` by the longest known ending of its name (any case), or None."""
    name = Path(path).name.lower()
    endings = [suffix for suffix in READERS if name.endswith(suffix)]
    return READERS[max(endings, key=len)] if endings else None


def load_dataset(
    path: str | Path,
    *,
    labels_xml: str | Path | None = None,
    text_column: str = "text",
    labels_column: str = "labels",
    id_column: str | None = None,
    n_labels: int | None = None,
    separator: str = ";",
    download: bool = False,
) -> MultiLabelDataset:
    """Read a data set, choosing the reader by file name, or a registered data set by name.

    ``.xml``: CMC 2007 challenge XML (:func:`~comorbid.data.cmc.read_cmc_xml`);
    ``.arff``, ``.arff.gz``, ``.arff.bz2``: MEKA/Mulan ARFF (:func:`~comorbid.data.arff.read_arff`,
    with ``labels_xml`` and ``n_labels``); ``.csv``, ``.tsv`` (tab-separated): texts with
    label sets (:func:`~comorbid.data.tabular.read_csv`); ``.jsonl``, ``.json``: JSON Lines
    (:func:`~comorbid.data.tabular.read_jsonl`). The column options and ``separator`` apply
    to the last two.

    Args:
        path: a file, or a registered name (``comorbid.data.registry.names()``): an existing
            file wins over a name.
        download: for a registered name not found locally, download it (see
            :func:`~comorbid.data.registry.resolve`).

    Raises:
        ValueError: a missing file, an unknown ending (one line saying which endings are
            known), or whatever the reader raises; anything a parser raises on bad bytes
            (:data:`INPUT_ERRORS`) becomes a ValueError naming the file.
    """
    path = Path(path)
    if not path.exists() and str(path) in DATASETS:
        path = resolve(str(path), download=download)
    if not path.exists():
        raise ValueError(f"No such file: {path} (nor a registered dataset name: {', '.join(names())})")
    if not path.is_file():
        raise ValueError(f"Expected a data file, got a directory: {path}")
    reader = reader_for(path)
    if reader is None:
        raise ValueError(f"Unknown data file type {path.name!r}: expected a name ending in {', '.join(SUFFIXES)}")
    if "separator" in reader.options and not separator:
        raise ValueError(f"Expected a non-empty label separator (--label-separator), got {separator!r}")
    given = dict(labels_xml=labels_xml, n_labels=n_labels, text_column=text_column, labels_column=labels_column,
                 id_column=id_column, separator=separator)
    return _read(reader.read, path, **{option: given[option] for option in reader.options})


def _read(reader: Callable[..., MultiLabelDataset], path: Path, **options) -> MultiLabelDataset:
    """``reader(path, **options)``, with every error that bad bytes can cause as a ValueError
    that names the file (what the CLI reports in one line, exit code 2).

    The readers name file and line themselves wherever they can; this is the net for what the
    parsers underneath raise (a ``UnicodeDecodeError``, a truncated archive, liac-arff's
    errors). Other exception types (``TypeError``, ``KeyError`` ...) are bugs and stay
    tracebacks.
    """
    try:
        return reader(path, **options)
    except INPUT_ERRORS as error:
        message = str(error) or type(error).__name__
        named = [str(p) for p in (path, options.get("labels_xml")) if p is not None]
        if type(error) is ValueError and any(n in message for n in named):
            raise  # the reader's own error: it already says where
        raise ValueError(f"Could not read {path}: {message}") from error
