"""Issue 11, outputs and model directories: nothing lost, no traceback.

Every output is checked before any work, written atomically (or through a FIFO/device), never
replaces what comorbid did not write; a model directory survives a kill at any step of a save
and is checked against a schema when loaded.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from comorbid.cli import main
from comorbid.data import MultiLabelDataset
from comorbid.io import OutputError, check_writable, spreadsheet_cell, umask, write_atomic
from comorbid.model import MultiLabelModel, align_features
from conftest import REPO, tiny_text_rows
from strategies import DETERMINISTIC

NAMES = ["cough", "fever", "pneumonia"]


def text_dataset(n: int = 60, names=NAMES, ids=None) -> MultiLabelDataset:
    rows = tiny_text_rows(n)
    labels = np.array([[name in row[2] for name in NAMES] for row in rows], dtype=np.int8)
    return MultiLabelDataset(ids or [r[0] for r in rows], [r[1] for r in rows], labels, list(names))


def write_csv(path: Path, dataset: MultiLabelDataset) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "text", "labels"])
        for row_id, text, row in zip(dataset.ids, dataset.inputs, dataset.labels):
            writer.writerow([row_id, text, ";".join(n for n, on in zip(dataset.label_names, row) if on)])
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An independent model with tuned thresholds (macro-f1), saved once; and its data as CSV."""
    root = tmp_path_factory.mktemp("trained")
    data = text_dataset()
    model = MultiLabelModel("independent").fit(data, decoders=["macro-f1"])
    model.save(root / "model")
    return {"model": model, "dir": root / "model", "data": data, "csv": write_csv(root / "notes.csv", data)}


@pytest.fixture
def model_copy(trained, tmp_path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(trained["dir"], target)
    return target


def run_cli(args: list[str]) -> tuple[int, str]:
    """``main(args)`` with its stderr captured."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, err.getvalue()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("comorbid: error:")]


# ------------------------------------------------------------------ 1. train --out over a folder
def test_train_refuses_a_non_empty_folder_that_is_not_a_model_and_deletes_nothing(trained, tmp_path, monkeypatch):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("precious")
    (folder / "figures").mkdir()
    monkeypatch.setattr("comorbid.cli._load", lambda *a, **k: pytest.fail("refused only after loading data"))
    code, stderr = run_cli(["train", trained["csv"], "--out", folder])
    assert code == 2
    assert len(error_lines(stderr)) == 1 and str(folder) in stderr and "not a comorbid model" in stderr
    assert (folder / "chapter1.tex").read_text() == "precious" and (folder / "figures").is_dir()


def test_train_replaces_a_model_folder_and_fills_an_empty_one_leaving_nothing_beside(trained, tmp_path, model_copy):
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (model_copy, empty):
        code, stderr = run_cli(["train", trained["csv"], "--out", out, "--model", "independent", "--decode", "none"])
        assert code == 0, stderr
        assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
        MultiLabelModel.load(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "model"]  # no .model.old*, no staging


def test_save_refuses_a_model_folder_holding_files_it_did_not_write(trained, model_copy):
    (model_copy / "NOTES.md").write_text("mine")
    with pytest.raises(OutputError, match="NOTES.md"):
        trained["model"].save(model_copy)
    assert (model_copy / "NOTES.md").read_text() == "mine"
    MultiLabelModel.load(model_copy)


def test_save_through_a_symlinked_model_folder_replaces_the_target_and_keeps_the_link(trained, tmp_path, model_copy):
    link = tmp_path / "current"
    link.symlink_to(model_copy)
    trained["model"].save(link)
    assert link.is_symlink() and MultiLabelModel.load(link).label_names_ == NAMES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "model"]


# ------------------------------------------------------------------ 2. one atomic write
def test_write_atomic_keeps_the_mode_of_a_replaced_file_and_gives_a_new_one_the_umask_default(tmp_path):
    kept = tmp_path / "kept.csv"
    kept.write_text("old")
    kept.chmod(0o640)
    write_atomic(kept, "new")
    assert kept.read_text() == "new" and stat.S_IMODE(kept.stat().st_mode) == 0o640
    fresh = write_atomic(tmp_path / "sub" / "fresh.json", b"{}")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask()
    assert stat.S_IMODE(fresh.parent.stat().st_mode) == 0o777 & ~umask()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["fresh.json", "kept.csv", "sub"]


def test_write_atomic_follows_a_symlink_and_keeps_the_link(tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_atomic(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "real.csv"]


def test_write_atomic_writes_through_a_fifo_and_dev_null_without_replacing_them(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    write_atomic(fifo, "through the pipe")
    reader.join(10)
    assert received == ["through the pipe"] and stat.S_ISFIFO(fifo.stat().st_mode)
    write_atomic("/dev/null", "discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_device_ends_with_exit_2_naming_it_and_stays_a_device(trained):
    code, stderr = run_cli(["evaluate", trained["dir"], trained["csv"], "--json", "/dev/full"])
    assert code == 2 and error_lines(stderr) == ["comorbid: error: /dev/full: No space left on device"]
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_write_atomic_refuses_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path, "x")


# ------------------------------------------------------------------ 3. killed while saving
KILL_STEPS = ["weights-written", "staging-written", "old-moved-aside", "new-moved-in"]
SAVE_SCRIPT = """
import sys
from comorbid.model import MultiLabelModel
model = MultiLabelModel.load(sys.argv[1])
model.head_.temperature = 2.0  # tells the new model from the old one
model.save(sys.argv[2])
"""


@pytest.mark.parametrize("step", KILL_STEPS)
def test_a_save_killed_at_any_step_leaves_the_old_or_the_new_model(trained, tmp_path, model_copy, step):
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COMORBID_TEST_KILL_AT": step}
    child = subprocess.run([sys.executable, "-c", SAVE_SCRIPT, str(trained["dir"]), str(model_copy)],
                           env=environment, capture_output=True, timeout=120)
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = MultiLabelModel.load(model_copy)
    new = step in ("old-moved-aside", "new-moved-in")
    assert loaded.head_.temperature == (2.0 if new else 1.0)
    assert (step == "old-moved-aside") == any("recovered the new version" in str(w.message) for w in caught)
    assert loaded.predict(trained["data"])["hamming"].shape == trained["data"].labels.shape
    trained["model"].save(model_copy)  # the next save clears what the killed one left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_first_save_killed_before_the_rename_leaves_no_model_and_the_next_save_cleans_up(trained, tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COMORBID_TEST_KILL_AT": "weights-written"}
    child = subprocess.run([sys.executable, "-c", SAVE_SCRIPT, str(trained["dir"]), str(tmp_path / "m")],
                           env=environment, capture_output=True, timeout=120)
    assert child.returncode == -9
    with pytest.raises(ValueError, match="config.json is missing"):
        MultiLabelModel.load(tmp_path / "m")  # the half-written staging folder is never taken for a model
    trained["model"].save(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


# ------------------------------------------------------------------ 4. preflight
UNWRITABLE = "/sys/comorbid-no-such-folder/out"  # sysfs refuses new files, even to root


def preflight_cases(trained):
    d, data = trained["dir"], trained["csv"]
    return {
        "train --out": ["train", data, "--out", UNWRITABLE],
        "predict --out": ["predict", d, data, "--out", UNWRITABLE + ".csv"],
        "predict --explain": ["predict", d, data, "--out", os.devnull, "--explain", UNWRITABLE + ".jsonl"],
        "report --out": ["report", d, data, "--out", UNWRITABLE + ".html"],
        "cv --json": ["cv", data, "--json", UNWRITABLE + ".json"],
        "evaluate --json": ["evaluate", d, data, "--json", UNWRITABLE + ".json"],
    }


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs Linux sysfs as an unwritable location")
@pytest.mark.parametrize("case", ["train --out", "predict --out", "predict --explain", "report --out", "cv --json",
                                  "evaluate --json"])
def test_an_unwritable_output_fails_in_a_second_before_any_work(trained, monkeypatch, case):
    args = preflight_cases(trained)[case]
    monkeypatch.setattr("comorbid.cli._load", lambda *a, **k: pytest.fail("loaded data before checking outputs"))
    monkeypatch.setattr("comorbid.cli._load_model", lambda *a: pytest.fail("loaded the model before checking outputs"))
    start = time.perf_counter()
    code, stderr = run_cli(args)
    assert time.perf_counter() - start < 1.0
    assert code == 2 and len(error_lines(stderr)) == 1 and UNWRITABLE in stderr


def test_check_writable_creates_missing_parents_and_refuses_a_file_as_folder(tmp_path):
    check_writable(tmp_path / "a" / "b" / "out.csv")
    assert (tmp_path / "a" / "b").is_dir() and not any((tmp_path / "a" / "b").iterdir())
    (tmp_path / "plain").write_text("x")
    with pytest.raises(OutputError, match="plain"):
        check_writable(tmp_path / "plain" / "out.csv")
    with pytest.raises(OutputError, match="is a directory"):
        check_writable(tmp_path / "a")
    with pytest.raises(OutputError, match="not a directory"):
        check_writable(tmp_path / "plain", "dir")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores file modes; the sysfs test covers an unwritable folder for root")
def test_check_writable_refuses_a_folder_without_write_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError, match="locked"):
        check_writable(locked / "out.csv")


# ------------------------------------------------------------------ 5. main: OS errors, not programming errors
def test_main_names_the_file_of_an_os_error(trained, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "secret.csv")

    monkeypatch.setattr("comorbid.cli._load", denied)
    code, stderr = run_cli(["cv", trained["csv"]])
    assert code == 2 and error_lines(stderr) == ["comorbid: error: secret.csv: Permission denied"]


def test_main_lets_programming_errors_show_a_traceback(trained, monkeypatch):
    def bug(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("comorbid.cli._load", bug)
    with pytest.raises(KeyError):
        main(["cv", str(trained["csv"])])


# ------------------------------------------------------------------ 6. the model directory's schema
def _set(config: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for key in parents:
        config = config[key]
    if value is KeyError:
        del config[last]
    else:
        config[last] = value


CONFIG_DAMAGE = [
    ("label_names", KeyError, "'label_names' is missing"),
    ("label_names", "fever", "'label_names' must be JSON list"),
    ("label_names", ["a", "a", "b"], "distinct"),
    ("temperature", -1.0, "'temperature' must be a finite number > 0"),
    ("temperature", math.inf, "'temperature'"),
    ("temperature", True, "'temperature' must be JSON integer or number"),
    ("head.n_labels", 4, "'head.n_labels' must be the number of label_names"),
    ("head.input_dim", 3, "'head.input_dim'"),
    ("encoder.name", "word2vec", "'encoder.name' must be one of"),
    ("model", "forest", "'model' must be one of"),
    ("encoder.state", KeyError, "'encoder.state' is missing"),
    ("encoder.options.ngram_range", 7, "'encoder' does not rebuild"),
    ("train.nonsense", 1, "'train' does not rebuild"),
    ("decoders.macro-f1.thresholds", [0.5], "'decoders.macro-f1.thresholds' must be one finite number per label"),
    ("decoders.macro-f1.thresholds", [0.5, math.nan, 0.5], "one finite number per label"),
    ("decoders.nonsense-decoder", {}, "'decoders.nonsense-decoder' does not rebuild"),
    ("format_version", 2, "expected format_version 1"),
]


@pytest.mark.parametrize("path, value, message", CONFIG_DAMAGE, ids=[f"{p}={v!r}" for p, v, _ in CONFIG_DAMAGE])
def test_load_names_the_file_and_key_of_a_bad_config(model_copy, path, value, message):
    config = json.loads((model_copy / "config.json").read_text())
    _set(config, path, value)
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="config.json") as error:
        MultiLabelModel.load(model_copy)
    assert message in str(error.value)


def _damage_weights(directory: Path, change) -> None:
    tensors = load_file(str(directory / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(directory / "model.safetensors"))


WEIGHT_DAMAGE = {
    "wrong shape": (lambda t: t.update({"head.linear.weight": torch.zeros(3, 7)}), "expected shape"),
    "missing key": (lambda t: t.pop("head.linear.bias"), "key head.linear.bias is missing"),
    "extra key": (lambda t: t.update({"head.extra": torch.zeros(1)}), "unexpected key head.extra"),
}


@pytest.mark.parametrize("damage", sorted(WEIGHT_DAMAGE))
def test_load_names_the_weights_file_and_key(model_copy, damage):
    change, message = WEIGHT_DAMAGE[damage]
    _damage_weights(model_copy, change)
    with pytest.raises(ValueError, match="model.safetensors") as error:
        MultiLabelModel.load(model_copy)
    assert message in str(error.value)


def test_truncated_weights_are_called_corrupt_in_one_line_through_the_cli(trained, model_copy, tmp_path):
    weights = model_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    code, stderr = run_cli(["predict", model_copy, trained["csv"], "--out", tmp_path / "p.csv"])
    assert code == 2 and len(error_lines(stderr)) == 1 and "Traceback" not in stderr
    assert "model.safetensors: the weights file is corrupt" in stderr


def test_a_chain_order_that_is_not_a_permutation_is_refused(tmp_path):
    MultiLabelModel("chain").fit(text_dataset()).save(tmp_path / "chain")
    _damage_weights(tmp_path / "chain", lambda t: t.update({"head.order": torch.tensor([0, 0, 1])}))
    with pytest.raises(ValueError, match="key head.order must hold a permutation"):
        MultiLabelModel.load(tmp_path / "chain")


def test_a_sparse_chain_saves_its_parents_and_refuses_parents_that_are_not_earlier(tmp_path):
    data = text_dataset()
    model = MultiLabelModel("chain", head_options={"parents": 1}).fit(data)
    assert model.head_.n_parents == 1
    model.save(tmp_path / "chain")
    loaded = MultiLabelModel.load(tmp_path / "chain")
    assert torch.equal(loaded.head_.parents, model.head_.parents)
    np.testing.assert_array_equal(loaded.predict(data, ["hamming"])["hamming"], model.predict(data, ["hamming"])["hamming"])
    _damage_weights(tmp_path / "chain", lambda t: t.update({"head.parents": torch.tensor([[3], [1], [0]])}))
    with pytest.raises(ValueError, match="key head.parents must hold for each chain position t, earlier"):
        MultiLabelModel.load(tmp_path / "chain")


# ------------------------------------------------------------------ 7. spreadsheet formulas
def test_spreadsheet_cell_quotes_formula_text_but_not_numbers():
    for formula in ("=1+1", "+cmd", "-x", "@SUM(A1)", "\tx", "\rx", "- 1"):
        assert spreadsheet_cell(formula) == "'" + formula
    for plain in ("-1", "+3.5", "786.2", "V10.3", "", "a=b"):
        assert spreadsheet_cell(plain) == plain


def test_predict_csv_prefixes_cells_a_spreadsheet_would_run(tmp_path):
    names = ["=HYPERLINK(\"http://x\")", "@cmd", "fever"]
    ids = [f"=row{i}" if i % 2 else f"-{i}" for i in range(60)]
    data = text_dataset(names=names, ids=ids)
    MultiLabelModel("independent").fit(data).save(tmp_path / "m")
    code, stderr = run_cli(["predict", tmp_path / "m", write_csv(tmp_path / "d.csv", data), "--out",
                            tmp_path / "p.csv"])
    assert code == 0, stderr
    rows = list(csv.reader((tmp_path / "p.csv").open(newline="")))[1:]
    assert rows[0][0] == "-0" and rows[1][0] == "'=row1"
    firsts = {labels for _, labels in rows if labels}
    assert any(cell.startswith("'=HYPERLINK") for cell in firsts)
    assert all(not cell.startswith(("=", "@", "+", "-")) for cell in firsts)


# ------------------------------------------------------------------ 8. features matched by name
def feature_dataset(order=(0, 1, 2, 3), names=("age", "bmi", "crp", "wbc"), n=80) -> MultiLabelDataset:
    x = np.random.default_rng(0).normal(size=(n, 4))
    labels = np.stack([x[:, 0] > 0, x[:, 1] > 0.5, x[:, 3] > 0], 1).astype(np.int8)
    order = list(order)
    return MultiLabelDataset([str(i) for i in range(n)], x[:, order], labels, ["a", "b", "c"],
                             feature_names=[names[j] for j in order])


def test_reordered_features_are_matched_by_name_after_save_and_load(tmp_path):
    data = feature_dataset()
    MultiLabelModel("independent").fit(data).save(tmp_path / "m")
    loaded = MultiLabelModel.load(tmp_path / "m")
    assert loaded.feature_names_ == ["age", "bmi", "crp", "wbc"]
    shuffled = feature_dataset(order=(3, 1, 0, 2))
    np.testing.assert_array_equal(loaded.marginals(shuffled), loaded.marginals(data))


def test_unknown_or_missing_feature_names_are_listed(tmp_path):
    model = MultiLabelModel("independent").fit(feature_dataset())
    other = feature_dataset(names=("age", "bmi", "crp", "sodium"))
    with pytest.raises(ValueError, match="missing wbc; unknown sodium"):
        model.predict(other)
    with pytest.raises(ValueError, match="missing f3, f4, f5, f6, f7 and 2 more"):
        align_features(np.zeros((1, 2)), ["a", "b"], ["a", "b"] + [f"f{i}" for i in range(3, 10)])


def test_a_model_saved_without_feature_names_still_predicts(tmp_path):
    data = feature_dataset()
    MultiLabelModel("independent").fit(data).save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    del config["feature_names"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    loaded = MultiLabelModel.load(tmp_path / "m")
    assert loaded.feature_names_ is None and loaded.predict(feature_dataset(order=(3, 1, 0, 2)))["hamming"].shape == (80, 3)


def test_cli_predict_matches_reordered_arff_attributes(tmp_path):
    def arff(path: Path, order) -> Path:
        data = feature_dataset(order=order)
        lines = ["@relation 'test: -C 3'"] + [f"@attribute {n} {{0,1}}" for n in data.label_names]
        lines += [f"@attribute {n} numeric" for n in data.feature_names] + ["@data"]
        lines += [",".join([*map(str, y), *(f"{v:.6f}" for v in x)]) for x, y in zip(data.inputs, data.labels)]
        path.write_text("\n".join(lines) + "\n")
        return path

    train, shuffled = arff(tmp_path / "train.arff", (0, 1, 2, 3)), arff(tmp_path / "shuffled.arff", (3, 1, 0, 2))
    assert main(["train", str(train), "--out", str(tmp_path / "m"), "--model", "independent", "--decode", "none"]) == 0
    for data, out in ((train, "a.csv"), (shuffled, "b.csv")):
        assert main(["predict", str(tmp_path / "m"), str(data), "--out", str(tmp_path / out)]) == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


# ------------------------------------------------------------------ 9. fuzzing the loader
ODD_VALUES = [None, "", "x", 0, -1, 1.5, 1e308, -0.0, True, [], {}, [1, "a"], {"a": 1}]
FUZZ = {"tried": 0}


def _paths(value, prefix=()):
    """Every (key path) into a JSON value, the top-level keys first."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return
    for key, inner in items:
        yield (*prefix, key)
        yield from _paths(inner, (*prefix, key))


@st.composite
def damage(draw):
    target = draw(st.sampled_from(["weights", "config"]))
    if target == "weights":
        kind = draw(st.sampled_from(["truncate", "flip"]))
        if kind == "truncate":
            return ("weights", "truncate", draw(st.floats(0, 1)))
        return ("weights", "flip", draw(st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                                           st.integers(1, 255)), min_size=1, max_size=4)))
    kind = draw(st.sampled_from(["delete", "replace", "scale"]))
    depth = draw(st.integers(1, 4))  # mostly shallow keys: the vocabulary alone has hundreds of paths
    pick = draw(st.floats(0, 1, exclude_max=True))
    value = draw(st.sampled_from(ODD_VALUES)) if kind == "replace" else draw(st.sampled_from([-1, 0, 2, 1e6]))
    return ("config", kind, (depth, pick, value))


def apply_damage(directory: Path, change) -> None:
    target, kind, argument = change
    if target == "weights":
        weights = directory / "model.safetensors"
        raw = bytearray(weights.read_bytes())
        if kind == "truncate":
            raw = raw[: int(argument * len(raw))]
        else:
            for position, mask in argument:
                raw[int(position * len(raw))] ^= mask
        weights.write_bytes(bytes(raw))
        return
    config = json.loads((directory / "config.json").read_text())
    depth, pick, value = argument
    paths = [p for p in _paths(config) if len(p) <= depth]
    path = paths[int(pick * len(paths))]
    parent = config
    for key in path[:-1]:
        parent = parent[key]
    if kind == "delete":
        if isinstance(parent, list):
            parent.pop(path[-1])
        else:
            del parent[path[-1]]
    elif kind == "replace":
        parent[path[-1]] = value
    else:
        old = parent[path[-1]]
        parent[path[-1]] = old * value if isinstance(old, (int, float)) and not isinstance(old, bool) else value
    (directory / "config.json").write_text(json.dumps(config))


@settings(DETERMINISTIC, max_examples=300)
@given(change=damage())
def test_fuzzed_model_directories_load_and_predict_or_fail_in_one_line(trained, change):
    FUZZ["tried"] += 1
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder) / "model"
        shutil.copytree(trained["dir"], directory)
        apply_damage(directory, change)
        try:
            model = MultiLabelModel.load(directory)
        except ValueError as error:
            assert "config.json" in str(error) or "model.safetensors" in str(error), str(error)
        else:
            for decoder in ("hamming", *model.decoder_states_):
                assert model.predict(trained["data"], [decoder])[decoder].shape == trained["data"].labels.shape
        code, stderr = run_cli(["predict", directory, trained["csv"], "--out", Path(folder) / "p.csv"])
        assert code in (0, 2) and "Traceback" not in stderr
        if code == 2:
            assert len(error_lines(stderr)) == 1


def test_report_fuzz_count():
    """Prints how many damaged model directories the fuzz test tried (run with -s)."""
    print(f"\nfuzzed model directories tried: {FUZZ['tried']}")
