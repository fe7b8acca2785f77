"""Where the real data sets live on this machine."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the data folder (it wins over every default).
DATA_ENV = "COMORBID_DATA"


def data_root() -> Path | None:
    """The folder holding the real data sets, or ``None`` if there is none.

    Looked up in this order:

    1. the environment variable ``COMORBID_DATA``, if set (returned even if it does not
       exist, so that an error later names the folder the user asked for);
    2. ``<cwd>/../shared/data``;
    3. ``<repository root>/../shared/data``, the repository root being the folder that
       holds ``src/comorbid``.

    Returns:
        The folder, or ``None`` when the variable is unset and neither default exists.
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    for candidate in (Path.cwd() / ".." / "shared" / "data", _repo_root() / ".." / "shared" / "data"):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def _repo_root() -> Path:
    """The folder holding ``src/comorbid`` (meaningful for a source checkout)."""
    return Path(__file__).resolve().parents[3]  # <root>/src/comorbid/data/paths.py
