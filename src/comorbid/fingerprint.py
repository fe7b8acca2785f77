"""Which rows a model was trained on: a compact fingerprint saved with it, to warn when it is scored on them.

``comorbid report MODEL TRAINING_FILE`` happily shows F1 0.999 everywhere: the model has seen
every row. The fingerprint is the set of 64-bit hashes (the first 8 bytes of SHA-256) of the
training rows' inputs; ``report`` and ``evaluate`` count how many of their rows are in it.

Why a sorted set of 64-bit hashes rather than a Bloom filter: it is exact up to hash
collisions (for N training rows, a new row is wrongly flagged with probability N / 2**64, about
3e-15 at N = 50,000), needs no tuning, and costs 8 bytes a row, base64 in ``config.json``:
about 10.7 characters a row, 0.53 MB for 50,000 rows, less than the vocabulary that a text
encoder already saves there for such a corpus. A Bloom filter at a 0.1% false-positive rate
would be about 4x smaller but would report a wrong fraction on large test sets.

A text is hashed after collapsing its whitespace (a note re-exported with other line endings
is still the same note); a feature row as its float64 values (dense) or its (column, value)
pairs (sparse).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import numpy as np
import scipy.sparse as sp

from comorbid.data.dataset import n_inputs

#: The ``"hash"`` of a fingerprint this module writes and reads.
HASH = "sha256-64"


def row_hashes(inputs: Any) -> np.ndarray:
    """``[N]`` uint64: the hash of each row of ``inputs`` (a list of texts or a feature matrix)."""

    def digest(data: bytes) -> int:
        return int.from_bytes(hashlib.sha256(data).digest()[:8], "little")

    if isinstance(inputs, list):
        rows = (" ".join(text.split()).encode("utf-8") for text in inputs)
    elif sp.issparse(inputs):
        matrix = sp.csr_matrix(inputs, dtype=np.float64)
        matrix.sort_indices()
        rows = (matrix.indices[a:b].astype(np.int64).tobytes() + matrix.data[a:b].tobytes()
                for a, b in zip(matrix.indptr[:-1], matrix.indptr[1:]))
    else:
        rows = (row.tobytes() for row in np.ascontiguousarray(inputs, dtype=np.float64))
    return np.fromiter((digest(row) for row in rows), dtype=np.uint64)


def fingerprint(inputs: Any) -> dict[str, Any]:
    """The JSON fingerprint of training ``inputs``: ``{"hash", "rows", "hashes"}`` where
    ``hashes`` is the base64 of the distinct row hashes, sorted, as little-endian uint64."""
    every = row_hashes(inputs)
    hashes = np.unique(every).astype("<u8")
    return {"hash": HASH, "rows": int(len(every)), "hashes": base64.b64encode(hashes.tobytes()).decode("ascii")}


def decode(saved: dict[str, Any]) -> np.ndarray:
    """The sorted uint64 hashes of a saved fingerprint.

    Raises:
        ValueError: an unknown ``hash`` or ``hashes`` that are not base64 of whole uint64s.
    """
    if saved.get("hash") != HASH:
        raise ValueError(f"Expected a fingerprint with hash {HASH!r}, got {saved.get('hash')!r}")
    try:
        raw = base64.b64decode(saved["hashes"], validate=True)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"Expected base64 'hashes' in the fingerprint ({error})") from None
    if len(raw) % 8:
        raise ValueError(f"Expected 'hashes' of 8 bytes each, got {len(raw)} bytes")
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64)


def seen_rows(saved: dict[str, Any] | None, inputs: Any) -> np.ndarray:
    """``[N]`` bool: which rows of ``inputs`` are among the fingerprinted training rows (all
    False without a fingerprint)."""
    if not saved:
        return np.zeros(n_inputs(inputs), dtype=bool)
    return np.isin(row_hashes(inputs), decode(saved))


def training_overlap_warning(saved: dict[str, Any] | None, inputs: Any, data_name: str) -> str | None:
    """A one-line warning when some rows of ``inputs`` were training rows of the model, else None."""
    seen = seen_rows(saved, inputs)
    if not seen.any():
        return None
    return (f"{int(seen.sum())} of {len(seen)} rows ({seen.mean():.0%}) of {data_name} were in the model's training "
            f"data: these scores measure memory, not how well it codes new notes")
