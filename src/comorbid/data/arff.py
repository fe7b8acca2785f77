"""Reader for multi-label ARFF files in the MEKA and Mulan conventions.

ARFF parsing itself is liac-arff's; this module adds what multi-label files need on top:
which attributes are labels, one-hot features, sparse rows, and errors with file and line.

- MEKA (Read, Reutemann, Pfahringer and Holmes, 2016, "MEKA: A Multi-label/Multi-target
  Extension to WEKA", JMLR 17(21)): the relation name carries ``-C n``: the FIRST ``n``
  attributes are the labels; a negative ``n`` means the LAST ``|n|``.
- Mulan (Tsoumakas, Spyromitros-Xioufis, Vilcek and Vlahavas, 2011, "MULAN: A Java Library
  for Multi-Label Learning", JMLR 12): a separate XML file names the label attributes,
  ``<labels xmlns="http://mulan.sourceforge.net/labels"><label name="..."/>...</labels>``,
  possibly nested for a hierarchy (every ``label`` element at any depth counts).
"""

from __future__ import annotations

import bz2
import gzip
import re
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import arff as liac_arff
import numpy as np
import scipy.sparse as sp

from comorbid.data.dataset import MultiLabelDataset

_MEKA_OPTION = re.compile(r"(?:^|[\s:])-C\s+(-?\d+)")
_NUMERIC = ("NUMERIC", "REAL", "INTEGER")


def read_arff(
    path: str | Path, labels_xml: str | Path | None = None, n_labels: int | None = None
) -> MultiLabelDataset:
    """Read a multi-label ARFF file (plain, ``.gz`` or ``.bz2``).

    Which attributes are labels, by precedence: ``n_labels`` if given (MEKA's sign
    convention: ``n > 0`` the first ``n`` attributes, ``n < 0`` the last ``|n|``), else the
    Mulan ``labels_xml`` file, else ``-C n`` in the relation name (MEKA). Label columns keep
    the file's attribute order.

    Features, in attribute order: numeric/real/integer attributes become one float column;
    a nominal attribute with values ``v1..vk`` becomes ``k`` one-hot columns named
    ``"attr=v"``. A missing value (``?``) of a nominal attribute becomes all zeros in its
    one-hot columns; in a numeric attribute it is an error, as are ``inf`` and ``NaN``:
    features are never NaN or infinite, and missing numbers are not imputed (impute them
    before, within each training split). In sparse rows an omitted value is 0 for a numeric
    attribute and the first declared value for a nominal one (the ARFF rule).

    Args:
        path: the ARFF file; ``.gz``/``.bz2`` files are decompressed (detected by content).
        labels_xml: a Mulan labels XML file.
        n_labels: number of label attributes, overriding the relation name.

    Returns:
        A dataset whose ``inputs`` are ``[N, D]`` float features: a dense ``np.ndarray`` when
        every data row is dense, a ``scipy.sparse`` CSR matrix when any row is sparse
        (``{index value, ...}``). ``ids`` are ``"0".."N-1"``.

    Raises:
        ValueError: unreadable ARFF (with the line liac-arff stopped at), no label
            information, labels that are not 0/1 (with the line), string/date features, a
            numeric feature that is ``?``, ``inf`` or ``NaN`` (with the line and attribute).
    """
    path = Path(path)
    lines = _read_lines(path)
    data_start = next((i for i, line in enumerate(lines) if line.strip().upper().startswith("@DATA")), None)
    if data_start is None:
        raise ValueError(f"Expected an @data line in ARFF file {path}, found none")
    # Line number (1-based) of every data row, in the order liac-arff yields them: it skips
    # blank lines and lines starting with '%'. Used to put a line on every row error.
    row_lines = [
        number
        for number, line in enumerate(lines[data_start + 1 :], start=data_start + 2)
        if line.strip() and not line.strip().startswith("%")
    ]
    sparse_rows = [lines[number - 1].strip().startswith("{") for number in row_lines]
    all_sparse = bool(row_lines) and all(sparse_rows)
    attribute_lines = [
        number
        for number, line in enumerate(lines[:data_start], start=1)
        if line.strip().upper().startswith("@ATTRIBUTE")
    ]

    decoder = liac_arff.ArffDecoder()
    # Generators, so that a bad row is caught while we know which row it is; LOD_GEN keeps
    # sparse rows sparse, DENSE_GEN reads dense rows (and expands the odd sparse one).
    return_type = liac_arff.LOD_GEN if all_sparse else liac_arff.DENSE_GEN
    try:
        obj = decoder.decode(lines, encode_nominal=True, return_type=return_type)
    except liac_arff.ArffException as error:  # header errors: liac-arff sets error.line
        raise ValueError(f"Invalid ARFF file {path} line {error.line}: {error}") from None
    except ValueError as error:  # liac-arff 2.4 unpacks a bare "@attribute name" without a check
        raise ValueError(f"Invalid ARFF file {path} line {decoder._current_line}: {error}") from None
    attributes: list[tuple[str, object]] = obj["attributes"]
    relation: str = obj["relation"]
    label_index = _label_indices(path, relation, attributes, labels_xml, n_labels)
    is_label = np.zeros(len(attributes), dtype=bool)
    is_label[label_index] = True

    for j in label_index:
        name, kind = attributes[j]
        if isinstance(kind, list):
            if not kind or not set(kind) <= {"0", "1"}:
                raise ValueError(
                    f"Expected label attribute {name!r} to be nominal {{0,1}} or numeric, got "
                    f"{{{','.join(map(str, kind))}}} in {path} line {attribute_lines[j]}"
                )
        elif kind not in _NUMERIC:
            raise ValueError(
                f"Expected label attribute {name!r} to be nominal {{0,1}} or numeric, got {kind} "
                f"in {path} line {attribute_lines[j]}"
            )

    feature_names: list[str] = []
    columns: list[tuple[int, int, list | None]] = []  # (attribute, first column, nominal values)
    for j, (name, kind) in enumerate(attributes):
        if is_label[j]:
            continue
        if isinstance(kind, list):
            columns.append((j, len(feature_names), kind))
            feature_names.extend(f"{name}={value}" for value in kind)
        elif kind in _NUMERIC:
            columns.append((j, len(feature_names), None))
            feature_names.append(name)
        else:
            raise ValueError(
                f"Expected numeric or nominal feature attributes, got {kind} attribute {name!r} "
                f"in {path} line {attribute_lines[j]}"
            )

    label_rows: list[np.ndarray] = []
    dense_rows: list[np.ndarray] = []
    sparse_cols: list[int] = []
    sparse_vals: list[float] = []
    indptr = [0]
    rows = iter(obj["data"])
    for line in row_lines:
        try:
            values = next(rows)
        except StopIteration:  # pragma: no cover - liac-arff yields one row per data line
            break
        except (liac_arff.ArffException, ValueError, OverflowError) as error:
            # Besides its own errors, liac-arff lets through what int(float(x)) raises for an
            # INTEGER attribute holding NaN (sparse rows) or inf (any row); its generators
            # leave error.line at -1.
            raise ValueError(f"Invalid ARFF file {path} line {line}: {error}") from None
        _check_converted(values, attributes, path, line)
        if all_sparse:
            label_rows.append(_labels_of(values, label_index, attributes, path, line, sparse=True))
            for j, first, nominal in columns:
                if nominal is None:
                    if j in values:
                        sparse_cols.append(first)
                        sparse_vals.append(_number(values[j], attributes[j][0], j, path, line))
                else:
                    value = values.get(j, 0)  # omitted nominal = first declared value
                    if value is not None:
                        sparse_cols.append(first + value)
                        sparse_vals.append(1.0)
            indptr.append(len(sparse_cols))
        else:
            label_rows.append(_labels_of(values, label_index, attributes, path, line, sparse=False))
            features = np.zeros(len(feature_names))
            for j, first, nominal in columns:
                value = values[j]
                if nominal is None:
                    features[first] = _number(value, attributes[j][0], j, path, line)
                elif value is not None:
                    features[first + value] = 1.0
            dense_rows.append(features)

    n_rows = len(label_rows)
    labels = np.array(label_rows, dtype=np.int8).reshape(n_rows, len(label_index))
    if all_sparse:
        inputs = sp.csr_matrix(
            (np.array(sparse_vals, dtype=float), np.array(sparse_cols, dtype=np.int64), np.array(indptr)),
            shape=(n_rows, len(feature_names)),
        )
        inputs.eliminate_zeros()
    else:
        inputs = np.array(dense_rows, dtype=float).reshape(n_rows, len(feature_names))
        if any(sparse_rows):
            inputs = sp.csr_matrix(inputs)
    return MultiLabelDataset(
        ids=[str(i) for i in range(n_rows)],
        inputs=inputs,
        labels=labels,
        label_names=[attributes[j][0] for j in label_index],
        feature_names=feature_names,
        name=relation.split(":")[0].strip() or path.name.split(".")[0],
    )


def meka_label_count(relation: str) -> int | None:
    """The ``n`` of ``-C n`` in a MEKA relation name (``"Music: -C 6"`` -> 6), else ``None``."""
    match = _MEKA_OPTION.search(relation)
    return int(match.group(1)) if match else None


def read_mulan_labels(path: str | Path) -> list[str]:
    """Label names from a Mulan labels XML file, in document order, at any depth."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        line, column = error.position
        raise ValueError(f"Malformed labels XML {path} line {line}, column {column + 1}: {error}") from None
    except FileNotFoundError:
        raise ValueError(f"No such labels XML file: {path}") from None
    names: list[str] = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "label":  # with or without the Mulan namespace
            name = element.get("name")
            if not name:
                raise ValueError(f"Expected a `name` attribute on every <label> in {path}, found one without")
            if name not in names:
                names.append(name)
    if not names:
        raise ValueError(f"Expected <label name=...> elements in {path}, found none")
    return names


def _label_indices(
    path: Path,
    relation: str,
    attributes: list[tuple[str, object]],
    labels_xml: str | Path | None,
    n_labels: int | None,
) -> list[int]:
    n_attributes = len(attributes)
    if n_labels is None and labels_xml is not None:
        names = read_mulan_labels(labels_xml)
        index = {name: j for j, (name, _) in enumerate(attributes)}
        missing = [name for name in names if name not in index]
        if missing:
            raise ValueError(
                f"Labels {missing[:5]}{' ...' if len(missing) > 5 else ''} named in {labels_xml} "
                f"are not attributes of {path}"
            )
        return sorted(index[name] for name in names)
    source = "n_labels"
    if n_labels is None:
        n_labels = meka_label_count(relation)
        source = f"-C in the relation name {relation!r}"
    if n_labels is None:
        raise ValueError(
            f"No label information for {path}: expected `-C n` in the @relation name (MEKA), "
            f"a Mulan labels XML file (labels_xml=...) or n_labels=..."
        )
    if n_labels == 0 or abs(n_labels) >= n_attributes:
        raise ValueError(
            f"Expected {source} to be a non-zero count below the {n_attributes} attributes of {path}, "
            f"got {n_labels}"
        )
    return list(range(n_labels)) if n_labels > 0 else list(range(n_attributes + n_labels, n_attributes))


def _check_converted(values, attributes, path: Path, line: int) -> None:
    """Refuse a row that liac-arff returned unconverted.

    For a dense row, liac-arff 2.4 swallows a failed conversion other than ``float()``'s (an
    INTEGER attribute holding ``NaN``: ``int(float("nan"))``) and returns the row's raw strings.
    String attributes are refused before the rows are read, so any string here is such a row.
    """
    items = values.items() if isinstance(values, dict) else enumerate(values)
    raw = [(j, value) for j, value in items if isinstance(value, str)]
    if not raw:
        return
    j, value = next(((j, v) for j, v in raw if attributes[j][1] == "INTEGER" and not _is_integer(v)), raw[0])
    raise ValueError(
        f"Expected a finite number in numeric attribute {attributes[j][0]!r} (attribute {j + 1}), "
        f"got {value!r} in {path} line {line}"
    )


def _is_integer(text: str) -> bool:
    try:
        int(float(text))
    except (ValueError, OverflowError):
        return False
    return True


def _number(value, name: str, j: int, path: Path, line: int) -> float:
    """A numeric feature's value, refusing what would poison training without an error.

    One inf makes standardisation divide by inf and every prediction the same; NaN (written
    ``NaN`` or ``?``, missing) propagates into every score. Missing values are not imputed
    here: a mean taken over the whole file would leak test rows into training folds.
    """
    if value is None:
        raise ValueError(
            f"Expected a number in numeric attribute {name!r} (attribute {j + 1}), got ? (missing) "
            f"in {path} line {line}; missing numeric features are not imputed: fill them in or drop the row"
        )
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(
            f"Expected a finite number in numeric attribute {name!r} (attribute {j + 1}), got {value!r} "
            f"in {path} line {line}"
        )
    return number


def _labels_of(
    values, label_index: list[int], attributes, path: Path, line: int, sparse: bool
) -> np.ndarray:
    """The 0/1 label vector of one row, with an error naming the line for anything else."""
    out = np.zeros(len(label_index), dtype=np.int8)
    for k, j in enumerate(label_index):
        value = values.get(j, 0) if sparse else values[j]
        name, kind = attributes[j]
        if value is not None and isinstance(kind, list):
            value = int(kind[value])  # encoded nominal index -> declared "0"/"1"
        if value not in (0, 1):  # None (missing) or a numeric value other than 0/1
            shown = "? (missing)" if value is None else repr(value)
            raise ValueError(
                f"Expected 0/1 in label attribute {name!r} (attribute {j + 1}), got {shown} "
                f"in {path} line {line}"
            )
        out[k] = value
    return out


def _read_lines(path: Path) -> list[str]:
    """The file's text lines, decompressing gzip/bzip2 (recognised by their magic bytes)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"No such file: {path}") from None
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        elif raw[:3] == b"BZh":
            raw = bz2.decompress(raw)
    except (OSError, EOFError, ValueError, zlib.error) as error:  # corrupt or truncated
        raise ValueError(f"Could not decompress {path}: {error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # WEKA writes files in the platform encoding
    return text.splitlines()
