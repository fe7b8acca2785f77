"""Registered data sets: where each lives, its SHA-256, and where to download it from.

``resolve(name)`` finds the file under :func:`comorbid.data.paths.data_root` or in the
download cache, checks its SHA-256, and (with ``download=True``) fetches it once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from comorbid.data.paths import data_root
from comorbid.io import write_atomic

#: Environment variable naming the download cache (default ``~/.cache/comorbid``).
CACHE_ENV = "COMORBID_CACHE"
_MEKA_DATA = "https://raw.githubusercontent.com/Waikato/meka/master/src/main/data/"


@dataclass(frozen=True)
class RegisteredDataset:
    """One data set known by name.

    Attributes:
        name: the name users type (``"emotions"``).
        relative_path: where the file lies under the data root and the cache.
        sha256: hex digest of the file as stored (compressed files: of the compressed bytes).
        url: a public download address, or ``None`` where there is none.
        description: one line for listings.
        how_to_get: what to do when there is no URL.
    """

    name: str
    relative_path: str
    sha256: str
    url: str | None
    description: str
    how_to_get: str = ""


_CMC_ACCESS = (
    "The CMC 2007 challenge data has no public download: it was distributed by the "
    "Computational Medicine Center (Cincinnati Children's Hospital) under a data use "
    "agreement; place the XML files under <data root>/cmc2007/."
)

#: Every registered data set, by name.
DATASETS: dict[str, RegisteredDataset] = {
    entry.name: entry
    for entry in (
        RegisteredDataset(
            "cmc2007",
            "cmc2007/2007ChallengeTrainData.xml",
            "9ddf73c88eed439c4d5f463954897189cbe8e68760bc65ae645586c1cd6fa7d0",
            None,
            "CMC 2007 radiology reports with ICD-9-CM codes (978 reports, 45 codes)",
            _CMC_ACCESS,
        ),
        RegisteredDataset(
            "cmc2007-test",
            "cmc2007/2007ChallengeTestDataNoCodes.xml",
            "dff2ba1490dc04cfd38252d9e201d17eb883de5b11c099ff3497c72c0df86c6f",
            None,
            "CMC 2007 test reports without codes (976 reports)",
            _CMC_ACCESS,
        ),
        RegisteredDataset(
            "emotions",
            "meka/Music.arff",
            "276be786e33b2ec11b91147483aa5758d8df6eb8b55f8ac82e5e0b231f0270b5",
            _MEKA_DATA + "Music.arff",
            "Music emotions, MEKA version (592 songs, 71 features, 6 labels)",
        ),
        RegisteredDataset(
            "scene",
            "meka/Scene.arff.bz2",
            "f560b40697d89803a6d260aa737e0879cf3699abb9a761f7cd3deab5c2a6d0a6",
            _MEKA_DATA + "Scene.arff.bz2",
            "Scene images (2407 images, 294 features, 6 labels)",
        ),
        RegisteredDataset(
            "enron",
            "meka/Enron.arff.bz2",
            "d8e629fd9cfce500845fbfe80aeba9e73572b877e42b919d9347858c57dcbdd8",
            _MEKA_DATA + "Enron.arff.bz2",
            "Enron e-mails, sparse bag of words (1702 e-mails, 1001 features, 53 labels)",
        ),
    )
}


def names() -> list[str]:
    """The registered names, sorted."""
    return sorted(DATASETS)


def cache_dir() -> Path:
    """The download cache: ``$COMORBID_CACHE`` or ``~/.cache/comorbid``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "comorbid"


def get(name: str) -> RegisteredDataset:
    """The registered entry for ``name``; ValueError listing the names if unknown."""
    if name not in DATASETS:
        raise ValueError(f"Expected a registered dataset name among {names()}, got {name!r}")
    return DATASETS[name]


def resolve(name: str, download: bool = False) -> Path:
    """The local path of registered data set ``name``, verified against its SHA-256.

    Looks under :func:`~comorbid.data.paths.data_root`, then in :func:`cache_dir`. If
    neither has the file and ``download`` is true, fetches ``url`` into the cache: to a
    temporary file beside the target, checks the SHA-256, then renames it into place
    (atomic, so an interrupted download never leaves a partial file under the real name).

    Raises:
        ValueError: unknown name; a file whose SHA-256 differs (it names both digests);
            not found locally and ``download`` false or no URL (the message says where it
            looked and how to fix it); a failed download.
    """
    entry = get(name)
    root = data_root()
    candidates = ([root / entry.relative_path] if root is not None else []) + [
        cache_dir() / entry.relative_path
    ]
    for candidate in candidates:
        if candidate.is_file():
            _check(candidate, entry.sha256)
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    if not download:
        fix = (
            f"set COMORBID_DATA to the folder holding {entry.relative_path}"
            + (", or download it (resolve(name, download=True))" if entry.url else "")
        )
        hint = f" {entry.how_to_get}" if entry.how_to_get else ""
        raise ValueError(f"Dataset {name!r} not found (looked at {looked}): {fix}.{hint}")
    if entry.url is None:
        raise ValueError(
            f"Dataset {name!r} not found (looked at {looked}) and has no download URL. {entry.how_to_get}"
        )
    target = cache_dir() / entry.relative_path
    fetch(entry.url, target, entry.sha256)
    return target


def fetch(url: str, target: Path, sha256: str) -> None:
    """Download ``url`` to ``target`` through a verified temporary file (see :func:`resolve`):
    :func:`comorbid.io.write_atomic`, whose temporary file is dropped when the digest differs."""

    def download(out) -> None:
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
        except OSError as error:  # URLError and HTTPError are OSErrors
            raise ValueError(f"Could not download {url}: {error}") from None
        if digest.hexdigest() != sha256:
            raise ValueError(
                f"Downloaded {url} has SHA-256 {digest.hexdigest()}, expected {sha256}; "
                "the file was not kept"
            )

    write_atomic(target, download, binary=True)


def _check(path: Path, sha256: str) -> None:
    stat = path.stat()
    actual = _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if actual != sha256:
        raise ValueError(
            f"{path} has SHA-256 {actual}, expected {sha256}: the file is corrupt or a "
            "different version; replace it (or delete it and download again)"
        )


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, memoised on (path, size, mtime) so each file is hashed once."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
