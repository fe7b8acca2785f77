"""Registered data sets: local lookup with SHA-256 checks, and downloads (file:// only, no internet)."""

import hashlib
import re

import pytest

import comorbid.data.registry as registry
from comorbid.data import DATASETS, RegisteredDataset, data_root, resolve


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """A registered data set whose 'remote' copy is a local file:// URL."""
    remote = tmp_path / "remote" / "tiny.csv"
    remote.parent.mkdir()
    remote.write_text("text,labels\nhello,a\n")
    digest = hashlib.sha256(remote.read_bytes()).hexdigest()
    entry = RegisteredDataset("tiny", "sub/tiny.csv", digest, remote.as_uri(), "a test file")
    monkeypatch.setitem(DATASETS, "tiny", entry)
    monkeypatch.setenv("COMORBID_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("COMORBID_CACHE", str(tmp_path / "cache"))
    return entry, tmp_path


def test_registered_names_and_urls():
    assert set(DATASETS) == {"cmc2007", "cmc2007-test", "emotions", "scene", "enron"}
    for entry in DATASETS.values():
        assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        if entry.name.startswith("cmc2007"):
            assert entry.url is None and "no public download" in entry.how_to_get
        else:
            assert entry.url.startswith("https://raw.githubusercontent.com/Waikato/meka/")
            assert entry.url.endswith(entry.relative_path.split("/")[-1])


def test_sums_agree_with_data_readme():
    root = data_root()
    readme = None if root is None else root / "README.md"
    if readme is None or not readme.is_file():
        pytest.skip("data README not found (set COMORBID_DATA)")
    text = readme.read_text()
    for entry in DATASETS.values():
        name = entry.relative_path.split("/")[-1]
        block = text[text.index(f"`{name}`") :]
        assert re.search(r"sha256 ([0-9a-f]{64})", block).group(1) == entry.sha256


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_real_files_resolve_and_verify(name):
    root = data_root()
    if root is None or not (root / DATASETS[name].relative_path).is_file():
        pytest.skip("real data not found (set COMORBID_DATA)")
    assert resolve(name) == root / DATASETS[name].relative_path


def test_local_file_is_verified_once(tiny):
    entry, tmp_path = tiny
    local = tmp_path / "root" / "sub" / "tiny.csv"
    local.parent.mkdir(parents=True)
    local.write_bytes((tmp_path / "remote" / "tiny.csv").read_bytes())
    registry._sha256.cache_clear()
    assert resolve("tiny") == local
    assert resolve("tiny") == local
    info = registry._sha256.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_local_mismatch_is_an_error(tiny):
    entry, tmp_path = tiny
    local = tmp_path / "root" / "sub" / "tiny.csv"
    local.parent.mkdir(parents=True)
    local.write_text("text,labels\nchanged,a\n")
    with pytest.raises(ValueError, match=rf"tiny\.csv has SHA-256 [0-9a-f]{{64}}, expected {entry.sha256}"):
        resolve("tiny")


def test_not_found_says_where_and_how(tiny):
    entry, tmp_path = tiny
    with pytest.raises(ValueError) as info:
        resolve("tiny")
    message = str(info.value)
    assert str(tmp_path / "root" / "sub" / "tiny.csv") in message
    assert str(tmp_path / "cache" / "sub" / "tiny.csv") in message
    assert "COMORBID_DATA" in message and "download=True" in message


def test_download_to_cache_then_reuse(tiny, monkeypatch):
    entry, tmp_path = tiny
    path = resolve("tiny", download=True)
    assert path == tmp_path / "cache" / "sub" / "tiny.csv"
    assert path.read_text() == "text,labels\nhello,a\n"
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind

    def no_network(*args, **kwargs):
        raise AssertionError("should not download again")

    monkeypatch.setattr(registry.urllib.request, "urlopen", no_network)
    assert resolve("tiny", download=True) == path


def test_download_with_wrong_sum_keeps_nothing(tiny, monkeypatch):
    entry, tmp_path = tiny
    monkeypatch.setitem(DATASETS, "tiny", RegisteredDataset("tiny", entry.relative_path, "0" * 64, entry.url, ""))
    with pytest.raises(ValueError, match=r"has SHA-256 [0-9a-f]{64}, expected 0{64}; the file was not kept"):
        resolve("tiny", download=True)
    assert list((tmp_path / "cache" / "sub").iterdir()) == []


def test_failed_download_and_missing_url(tiny, monkeypatch):
    entry, tmp_path = tiny
    monkeypatch.setitem(DATASETS, "tiny", RegisteredDataset("tiny", entry.relative_path, entry.sha256, (tmp_path / "nothing").as_uri(), ""))
    with pytest.raises(ValueError, match="Could not download file://"):
        resolve("tiny", download=True)
    assert list((tmp_path / "cache" / "sub").iterdir()) == []
    monkeypatch.setitem(DATASETS, "tiny", RegisteredDataset("tiny", entry.relative_path, entry.sha256, None, "", "Ask."))
    with pytest.raises(ValueError, match="has no download URL. Ask."):
        resolve("tiny", download=True)


def test_unknown_name_lists_names():
    with pytest.raises(ValueError, match=r"among \['cmc2007', 'cmc2007-test', 'emotions', 'enron', 'scene'\], got 'yeast'"):
        resolve("yeast")
