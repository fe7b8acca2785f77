"""data_root(): environment variable first, then ../shared/data beside cwd or the repository."""

from pathlib import Path

import comorbid.data.paths as paths
from comorbid.data.paths import data_root


def test_env_var_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("COMORBID_DATA", str(tmp_path / "anywhere"))
    assert data_root() == tmp_path / "anywhere"


def test_cwd_sibling_then_repo_sibling(monkeypatch, tmp_path):
    monkeypatch.delenv("COMORBID_DATA", raising=False)
    (tmp_path / "work" / "repo").mkdir(parents=True)
    (tmp_path / "elsewhere" / "repo").mkdir(parents=True)
    (tmp_path / "elsewhere" / "shared" / "data").mkdir(parents=True)
    monkeypatch.setattr(paths, "_repo_root", lambda: tmp_path / "elsewhere" / "repo")
    monkeypatch.chdir(tmp_path / "work" / "repo")
    # Only the repository's sibling exists.
    assert data_root() == (tmp_path / "elsewhere" / "shared" / "data").resolve()
    # A sibling of the working directory comes first.
    (tmp_path / "work" / "shared" / "data").mkdir(parents=True)
    assert data_root() == (tmp_path / "work" / "shared" / "data").resolve()


def test_none_when_nothing_exists(monkeypatch, tmp_path):
    monkeypatch.delenv("COMORBID_DATA", raising=False)
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.setattr(paths, "_repo_root", lambda: tmp_path / "a" / "b")
    monkeypatch.chdir(tmp_path / "a" / "b")
    assert data_root() is None


def test_repo_root_holds_the_package():
    if not (paths._repo_root() / "src").is_dir():  # installed, not a source checkout
        return
    assert (paths._repo_root() / "src" / "comorbid" / "data" / "paths.py").is_file()
    assert isinstance(paths._repo_root(), Path)
