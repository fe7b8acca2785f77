"""Data-parallel training under torchrun (comorbid.distributed): 2 CPU ranks under gloo give the
one-process model, only rank 0 writes it, and a rank that dies leaves no half-written model.

The two-rank runs start ``python -m torch.distributed.run --standalone`` (a free port of its
own) as a subprocess; each costs a few seconds of imports per rank.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from comorbid import distributed
from comorbid.cli import main as cli_main
from comorbid.data import load_dataset
from comorbid.io import KILL_AT_ENV
from comorbid.model import WEIGHTS_FILE, is_model_directory

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
CLI_OPTIONS = ["--decode", "none", "--penalty", "l2", "--weight-decay", "0.03"]  # as tests/distributed_worker.py
KEYWORDS = {"fever": "fever", "cough": "cough", "pneumonia": "consolidation", "asthma": "wheezing"}
FILLER = "patient seen today chest radiograph findings noted stable clinical history impression".split()


def noisy_notes(path: Path, n: int = 81, seed: int = 0) -> Path:
    """A JSONL of ``n`` notes whose words only suggest their labels (a keyword is missing or
    stray now and then), so that the training objective has a well-defined optimum: on
    separable data the weights drift along flat directions and any change in the order of
    floating-point sums (threads, ranks) moves them."""
    rng = random.Random(seed)
    with path.open("w") as stream:
        for i in range(n):
            labels = [name for name in KEYWORDS if rng.random() < 0.4] or ["fever"]
            words = [KEYWORDS[name] for name in labels if rng.random() < 0.8]
            words += [KEYWORDS[name] for name in KEYWORDS if name not in labels and rng.random() < 0.15]
            words += rng.sample(FILLER, 5)
            rng.shuffle(words)
            stream.write(json.dumps({"id": f"n{i}", "text": " ".join(words), "labels": ";".join(labels)}) + "\n")
    return path


def torchrun(*arguments: str, environment: dict[str, str] | None = None, timeout: float = 240):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", **(environment or {})}
    for name in distributed.LAUNCH_ENVIRONMENT:  # a launcher's variables would leak into ours
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           *arguments], env=env, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------- without a process group
def test_shards_are_disjoint_cover_the_batch_and_keep_its_order():
    rows = np.array([7, 3, 9, 1, 4, 8, 2])
    for world in (1, 2, 3, 8):
        parts = [distributed.shard(rows, rank, world) for rank in range(world)]
        assert sorted(np.concatenate(parts).tolist()) == sorted(rows.tolist())
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert distributed.shard(rows, 1, 2).tolist() == [3, 1, 8]
    assert distributed.shard(rows).tolist() == rows.tolist()  # one process: everything


def test_shard_shares_add_up_to_one_with_and_without_row_weights():
    rows = np.arange(5)
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.5])
    for w in (None, weights):
        shares = [distributed.shard_share(distributed.shard(rows, r, 2), rows, w) for r in range(2)]
        assert sum(shares) == pytest.approx(1.0)
    assert distributed.shard_share(np.array([0, 2, 4]), rows, weights) == pytest.approx(4.5 / 10.5)


def test_one_process_has_rank_0_of_1_and_plain_objective():
    assert (distributed.active(), distributed.rank(), distributed.world_size(), distributed.is_main()) == (
        False, 0, 1, True)
    assert distributed.data_parallel([torch.nn.Linear(2, 2)])(lambda: torch.tensor(3.0)) == 3.0


def test_distributed_flag_outside_torchrun_is_an_input_error(tmp_path, capsys, monkeypatch):
    for name in distributed.LAUNCH_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    data = noisy_notes(tmp_path / "notes.jsonl", n=20)
    assert cli_main(["train", str(data), "--out", str(tmp_path / "m"), "--distributed"]) == 2
    assert "torchrun --nproc-per-node" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------------------- 2 ranks under gloo
def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    """One torchrun of tests/distributed_worker.py: the CLI's default model (L-BFGS) and an Adam model."""
    folder = tmp_path_factory.mktemp("ddp")
    data = noisy_notes(folder / "notes.jsonl")
    out = folder / "out"
    out.mkdir()
    done = torchrun(str(HERE / "distributed_worker.py"), str(data), str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return data, out, done


def _worker_models():
    sys.path.insert(0, str(HERE))
    try:
        import distributed_worker
    finally:
        sys.path.remove(str(HERE))
    return distributed_worker


def _assert_same_weights(two: dict[str, torch.Tensor], one: dict[str, torch.Tensor], rtol: float, atol: float):
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=rtol, atol=atol, msg=lambda m: f"{name}: {m}")


def test_two_ranks_train_the_one_process_model_cli(two_rank_run, tmp_path):
    """The CLI's default model (full-batch L-BFGS) in float32: L-BFGS stops where the float32
    objective stops changing, which resolves the weights to ~1e-3 (a different number of torch
    threads moves them as much in one process), hence the tolerance."""
    data, out, _ = two_rank_run
    assert cli_main(["train", str(data), "--out", str(tmp_path / "one"), *CLI_OPTIONS]) == 0
    _assert_same_weights(_weights(out / "cli-model" / WEIGHTS_FILE), _weights(tmp_path / "one" / WEIGHTS_FILE),
                         rtol=1e-2, atol=1e-2)
    configs = [json.loads((d / "config.json").read_text()) for d in (tmp_path / "one", out / "cli-model")]
    assert configs[0]["label_names"] == configs[1]["label_names"]
    assert configs[1]["history"]["train_loss"] == pytest.approx(configs[0]["history"]["train_loss"], rel=1e-3)


def test_two_ranks_train_the_one_process_model_lbfgs_float64(two_rank_run, float64):
    """The same L-BFGS in float64: every objective and gradient the line search sees is the
    one-process one up to rounding, and so is the model."""
    data, out, _ = two_rank_run
    model = _worker_models().lbfgs_model().fit(load_dataset(str(data)))
    history = json.loads((out / "lbfgs64" / "history.json").read_text())
    assert history["evaluations"] == model.history_["evaluations"]
    assert history["train_loss"] == pytest.approx(model.history_["train_loss"], rel=1e-9)
    _assert_same_weights(_weights(out / "lbfgs64" / "weights.safetensors"), _worker_models().state(model),
                         rtol=1e-6, atol=1e-8)


def test_two_ranks_train_the_one_process_model_adam(two_rank_run):
    """Mini-batches (sharded per batch, a last batch with one row: rank 1's shard is empty),
    weighted rows, early stopping on an all-reduced validation loss, then the refit."""
    data, out, _ = two_rank_run
    model = _worker_models().adam_model().fit(load_dataset(str(data)))
    history = json.loads((out / "adam" / "history.json").read_text())
    assert (history["epochs_run"], history["best_epoch"]) == (model.history_["epochs_run"], model.history_["best_epoch"])
    assert history["validation_loss"] == pytest.approx(model.history_["validation_loss"], rel=1e-5)
    _assert_same_weights(_weights(out / "adam" / "weights.safetensors"), _worker_models().state(model),
                         rtol=1e-4, atol=1e-5)


def test_only_rank_0_writes_the_model(two_rank_run):
    _, out, done = two_rank_run
    assert (out / "save-calls-rank0").read_text().splitlines() == [str(out / "cli-model")]
    assert not (out / "save-calls-rank1").exists()
    assert is_model_directory(out / "cli-model")
    assert sorted(p.name for p in (out / "cli-model").iterdir()) == ["config.json", WEIGHTS_FILE]
    assert done.stderr.count("saved chain model") == 1


def test_a_rank_that_dies_leaves_no_model_and_the_old_one_intact(two_rank_run, tmp_path):
    data, out, _ = two_rank_run
    target = tmp_path / "model"
    # a previous model in the destination, which the failed run must leave as it was
    subprocess.run(["cp", "-r", str(out / "cli-model"), str(target)], check=True)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    done = torchrun("-m", "comorbid", "train", str(data), "--out", str(target), *CLI_OPTIONS,
                    environment={KILL_AT_ENV: "rank-1-trained"})
    assert done.returncode != 0
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging directory left beside it
