"""Label columns matched by name: the one place that lines up two lists of label names.

A model knows the labels it was trained on; new data may order them differently, lack some and
carry codes the model never saw. Evaluation and reports line the data up with the model's
columns, then append the unknown codes as columns the model never predicts (they count as
missed).

Example:
    >>> import numpy as np
    >>> names, unknown = names_with_unknown(["a", "b"], ["c", "b"])
    >>> names, unknown
    (['a', 'b', 'c'], ['c'])
    >>> align_columns(np.array([[1, 0], [0, 1]]), ["c", "b"], names)
    array([[0, 0, 1],
           [0, 1, 0]])
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def align_columns(matrix: np.ndarray, names: Sequence[str], target_names: Sequence[str],
                  dtype: np.dtype | type | None = None) -> np.ndarray:
    """``matrix [N, len(names)]`` with its columns put in the order of ``target_names``.

    Column ``j`` of the result is the column of ``matrix`` named ``target_names[j]``, or zeros
    where ``names`` lacks that name; columns whose name is not in ``target_names`` are dropped.
    When ``target_names`` equals ``names`` (and ``dtype`` does not change), ``matrix`` itself is
    returned, not a copy: a model's ``[N, M]`` marginals can be large.

    Args:
        matrix: ``[N, len(names)]`` labels, predictions or probabilities (numpy).
        names: the names of ``matrix``'s columns, in order (unique).
        target_names: the names of the result's columns, in order.
        dtype: of the result (default: ``matrix``'s).
    """
    matrix = np.asarray(matrix)
    dtype = matrix.dtype if dtype is None else np.dtype(dtype)
    if matrix.ndim != 2 or matrix.shape[1] != len(names):
        raise ValueError(f"Expected a matrix [N, {len(names)}] (one column per name), got shape {matrix.shape}")
    if list(target_names) == list(names) and dtype == matrix.dtype:
        return matrix
    index = {name: j for j, name in enumerate(names)}
    source = np.array([index.get(name, -1) for name in target_names], dtype=np.intp)
    present = source >= 0
    aligned = np.zeros((matrix.shape[0], len(target_names)), dtype=dtype)
    aligned[:, present] = matrix[:, source[present]]
    return aligned


def names_with_unknown(known: Sequence[str], names: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(known + unknown, unknown)``: ``unknown`` are the ``names`` not in ``known``, sorted.

    What ``comorbid evaluate`` and ``comorbid report`` score against: the model's ``known``
    labels in its column order, then the data's labels the model does not know.
    """
    unknown = sorted(set(names) - set(known))
    return list(known) + unknown, unknown


def read_code_list(path) -> list[str]:
    """The codes listed in the text file ``path``, one a line, in file order, without repeats.

    Blank lines and lines starting with ``#`` are skipped; white space around a code is
    ignored. What ``comorbid train --codes FILE`` adds to the label space as candidates with no
    training note (suggested through their descriptions). A ValueError names the file and line
    of anything else: two words on a line, a code joined to another by ``,``, ``;`` or ``|``,
    text that is not UTF-8; and a file listing no code at all.
    """
    from pathlib import Path

    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such code list file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, expected a code list file (one code a line)") from None
    codes: dict[str, None] = {}
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8-sig" if number == 1 else "utf-8").strip()
        except UnicodeDecodeError:
            raise ValueError(f"{path} line {number}: not UTF-8 text (a code list is one code a line)") from None
        if not text or text.startswith("#"):
            continue
        if len(text.split()) > 1:
            raise ValueError(f"{path} line {number}: expected one code a line, got {text[:80]!r}")
        if any(mark in text for mark in ",;|"):
            raise ValueError(f"{path} line {number}: expected one code a line, got {text[:80]!r} "
                             "(put each code on a line of its own)")
        codes.setdefault(text, None)
    if not codes:
        raise ValueError(f"{path}: lists no code (expected one code a line)")
    return list(codes)
