"""Writing outputs without losing anything: atomic files, a writability preflight, directory swaps.

Every file the CLI writes goes through :func:`write_atomic`, every model directory through
:func:`publish_directory`, and every command checks its outputs with :func:`check_writable`
before it starts working, so a read-only or mistyped destination fails in a second, not after
an hour of training.

Decisions (docs/outputs.md):

- A symbolic link is followed: its target is written atomically and the link stays a link.
- A FIFO, character device (``/dev/null``, ``/dev/stdout``) or other node that is not a regular
  file is written through directly (opened and written, never replaced by a regular file).
- Missing parent folders are created (as ``mkdir -p``), with the umask's default mode.
- A replaced file keeps its mode; a new file gets ``0666 & ~umask`` (``mkstemp`` alone would give
  ``0600``), a new directory ``0777 & ~umask``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import stat
import tempfile
import warnings
from pathlib import Path
from typing import IO, Callable, Iterable

#: Test-only: the name of a step of :func:`publish_directory` (or of a model save) at which the
#: process kills itself with SIGKILL, to check that every interruption leaves a loadable model.
KILL_AT_ENV = "COMORBID_TEST_KILL_AT"


class OutputError(ValueError):
    """An output cannot be written where asked (exit code 2 in the CLI)."""


def kill_point(step: str) -> None:
    """Test-only hook: SIGKILL this process at ``step`` when ``$COMORBID_TEST_KILL_AT`` names it."""
    if os.environ.get(KILL_AT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def umask() -> int:
    """The process umask, read without changing it where /proc allows (threads may be running)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some file systems refuse)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _with_filename(error: OSError, path: Path) -> OSError:
    """``error`` naming ``path`` (writes report no file name of their own)."""
    if error.filename is None:
        error.filename = str(path)
    return error


def resolve_link(path: str | os.PathLike) -> Path:
    """``path``, with a symbolic link replaced by what it points to (links are followed)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def check_writable(path: str | os.PathLike, kind: str = "file") -> None:
    """Fail now, naming ``path``, if an output of ``kind`` ``"file"`` or ``"dir"`` cannot be written there.

    Creates missing parent folders, then creates and removes a temporary file in the folder
    that will receive the output (the output's own folder for a file, its parent for a
    directory, which is written as a sibling and renamed into place). This catches read-only
    file systems and missing permissions even for root, for whom ``os.access`` always says yes.

    Raises:
        OutputError: ``path`` is a directory where a file is expected or the other way round,
            or its folder cannot be created or written.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"Expected kind 'file' or 'dir', got {kind!r}")
    target = resolve_link(path)
    if target.exists():
        if kind == "file" and target.is_dir():
            raise OutputError(f"{path}: is a directory, expected a file to write")
        if kind == "dir" and not target.is_dir():
            raise OutputError(f"{path}: exists and is not a directory")
        if kind == "file" and not stat.S_ISREG(target.stat().st_mode):
            if not os.access(target, os.W_OK):
                raise OutputError(f"{path}: cannot be written (permission denied)")
            return  # a FIFO or device is written through; nothing to create beside it
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".comorbid-check-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(f"{path}: cannot write in {folder}: {error.strerror or error}") from None


def write_atomic(path: str | os.PathLike, write: Callable[[IO], None] | str | bytes, binary: bool = False) -> Path:
    """Write a file so that readers see the old content or the new one, never half of it.

    ``write`` is the text (or bytes) to write, or a function that writes to an open stream
    (text with ``newline=""``, or binary when ``binary``). A regular file is written to a
    temporary file in the same folder, flushed to disk (fsync) and renamed over ``path``
    (``os.replace``); the file it replaces keeps its mode. A symbolic link is followed. A FIFO
    or device is opened and written directly. Returns the path written.
    """
    target = resolve_link(path)
    if isinstance(write, (str, bytes)):
        content = write
        binary = isinstance(content, bytes)
        write = lambda stream: stream.write(content)  # noqa: E731
    open_mode = "wb" if binary else "w"
    text_options = {} if binary else {"encoding": "utf-8", "newline": ""}
    try:
        existing = target.stat()
    except FileNotFoundError:
        existing = None
    except OSError as error:
        raise _with_filename(error, target) from None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise IsADirectoryError(21, "Is a directory", str(path))
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        try:  # a FIFO, /dev/null, /dev/full ...: write through it, keep the node
            with open(target, open_mode, **text_options) as stream:
                write(stream)
        except OSError as error:
            raise _with_filename(error, target) from None
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise _with_filename(error, target) from None
    try:
        with os.fdopen(handle, open_mode, **text_options) as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, stat.S_IMODE(existing.st_mode) if existing else 0o666 & ~umask())
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise _with_filename(error, target) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)
    return target


# ------------------------------------------------------------------ directories
def staging_directory(target: str | os.PathLike) -> Path:
    """A new empty sibling ``.NAME.new-XXXX`` of ``target`` to build its next version in
    (mode ``0777 & ~umask``; parent folders created)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    os.chmod(staging, 0o777 & ~umask())
    return staging


def sync_tree(folder: Path) -> None:
    """fsync every file of ``folder`` and the folder itself (before it is renamed into place)."""
    for entry in folder.iterdir():
        if entry.is_file():
            with open(entry, "rb") as stream:
                os.fsync(stream.fileno())
    _fsync_directory(folder)


def _leftovers(target: Path, kind: str) -> list[Path]:
    """Siblings ``.NAME.new-*`` / ``.NAME.old-*`` of ``target`` left by an interrupted swap, newest first."""
    found = [p for p in target.parent.glob(f".{target.name}.{kind}-*") if p.is_dir() and not p.is_symlink()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def recover_directory(target: str | os.PathLike, is_complete: Callable[[Path], bool]) -> Path | None:
    """Put back ``target`` after a swap was interrupted, if it is missing.

    When ``target`` does not exist but a complete (``is_complete``) ``.NAME.new-*`` or
    ``.NAME.old-*`` sibling does, the newest complete new version (else the newest complete old
    one) is renamed into place, with a warning saying which. Returns the recovered folder's
    old path, or ``None`` when nothing was done.
    """
    target = Path(target)
    if os.path.lexists(target) or not target.parent.is_dir():
        return None
    for kind in ("new", "old"):
        for candidate in _leftovers(target, kind):
            if is_complete(candidate):
                os.rename(candidate, target)
                _fsync_directory(target.parent)
                warnings.warn(f"{target} was missing after an interrupted save; recovered the "
                              f"{'new' if kind == 'new' else 'previous'} version from {candidate.name}",
                              stacklevel=2)
                return candidate
    return None


def remove_leftovers(target: str | os.PathLike) -> None:
    """Remove the ``.NAME.new-*`` / ``.NAME.old-*`` siblings of an existing ``target`` (ours alone
    use these names; one is left only by a save that was killed)."""
    target = Path(target)
    if not target.is_dir():
        return
    for kind in ("new", "old"):
        for leftover in _leftovers(target, kind):
            shutil.rmtree(leftover, ignore_errors=True)


def publish_directory(staging: Path, target: str | os.PathLike, own_files: Iterable[str]) -> Path:
    """Move the complete folder ``staging`` to ``target``, replacing what is there.

    ``target`` must be missing, empty, or hold only ``own_files`` (files we wrote); it is renamed
    aside to ``.NAME.old-XXXX``, ``staging`` renamed into place, then the old one removed. At
    every instant either ``target`` or a complete sibling exists, which
    :func:`recover_directory` puts back. Steps where the test hook may kill the process:
    ``old-moved-aside``, ``new-moved-in``.
    """
    target = Path(target)
    own = set(own_files)
    sync_tree(staging)
    if not os.path.lexists(target):
        os.rename(staging, target)
        _fsync_directory(target.parent)
        return target
    foreign = sorted(entry.name for entry in target.iterdir() if entry.name not in own)
    if foreign:
        raise OutputError(f"{target}: holds files comorbid did not write ({', '.join(foreign[:5])}); "
                          "not replacing it")
    old = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
    os.rename(target, old)
    kill_point("old-moved-aside")
    os.rename(staging, target)
    _fsync_directory(target.parent)
    kill_point("new-moved-in")
    for name in own:
        (old / name).unlink(missing_ok=True)
    try:
        old.rmdir()
    except OSError:  # something appeared in it meanwhile: keep it rather than delete what we did not write
        pass
    return target


# ------------------------------------------------------------------ CSV cells
#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(text: str) -> str:
    """``text`` made safe to open in a spreadsheet: a text cell starting with ``= + - @``, tab or
    carriage return gets a leading single quote (``'=cmd``), as OWASP recommends. Numbers such
    as ``-1`` or ``+3.5`` are data, not formulas, and are left alone.

    >>> spreadsheet_cell("=HYPERLINK(1)"), spreadsheet_cell("-1"), spreadsheet_cell("786.2")
    ("'=HYPERLINK(1)", '-1', '786.2')
    """
    if not text.startswith(FORMULA_STARTS):
        return text
    try:
        float(text)
    except ValueError:
        return "'" + text
    return text if text.strip() == text else "'" + text  # float() accepts surrounding white space
