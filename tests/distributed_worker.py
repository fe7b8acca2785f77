"""One rank of tests/test_distributed.py, started by torchrun (not a test module itself).

``python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed_worker.py DATA OUT``:
every rank runs ``comorbid train DATA --out OUT/cli-model`` through the CLI (recording, in
``OUT/save-calls-rank{R}``, each call of ``MultiLabelModel.save``), then an Adam training of a
bag of words with a hidden layer (weighted rows, early stopping, batches whose last shard is empty)
and an L-BFGS training of the default model in float64, through the Python API; rank 0 writes their
weights and histories to ``OUT/adam`` and ``OUT/lbfgs64``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def adam_model():
    """The Adam configuration the test also trains in one process (no dropout: the ranks draw
    their own masks, so dropout is the one thing that differs from one process)."""
    from comorbid.model import MultiLabelModel

    return MultiLabelModel("chain", encoder="tfidf", encoder_options={"hidden": 8, "dropout": 0.0},
                           train={"optimizer": "adam", "epochs": 6, "batch_size": 16, "learning_rate": 3e-2,
                                  "validation_fraction": 0.2, "patience": 2, "balance": "sqrt"})


def lbfgs_model():
    """The default model (chain, clinical bag of words: full-batch L-BFGS), trained in float64 by
    the test and the worker: in float32 the L-BFGS stopping point is only resolved to ~1e-3 (the
    objective's rounding), in float64 the two trajectories agree to far tighter tolerances."""
    from comorbid.model import MultiLabelModel

    return MultiLabelModel("chain", train={"penalty": "l2", "weight_decay": 0.03})


def state(model) -> dict[str, torch.Tensor]:
    tensors = {f"encoder.{k}": v.contiguous() for k, v in model.encoder_.state_dict().items()}
    return tensors | {f"head.{k}": v.contiguous() for k, v in model.head_.state_dict().items()}


def main(data: str, out: str) -> None:
    from comorbid import distributed
    from comorbid.cli import main as cli_main
    from comorbid.data import load_dataset
    from comorbid.model import MultiLabelModel

    torch.set_num_threads(1)
    out_path = Path(out)
    with distributed.process_group():
        rank = distributed.rank()
        save = MultiLabelModel.save

        def recorded_save(self, directory):
            with open(out_path / f"save-calls-rank{rank}", "a") as log:
                log.write(f"{directory}\n")
            return save(self, directory)

        MultiLabelModel.save = recorded_save
        code = cli_main(["train", data, "--out", str(out_path / "cli-model"), "--decode", "none",
                         "--penalty", "l2", "--weight-decay", "0.03"])
        if code:
            sys.exit(code)
        dataset = load_dataset(data)
        adam = adam_model().fit(dataset)
        torch.set_default_dtype(torch.float64)
        lbfgs = lbfgs_model().fit(dataset)
        torch.set_default_dtype(torch.float32)
        if distributed.is_main():
            from safetensors.torch import save_file

            for name, model in (("adam", adam), ("lbfgs64", lbfgs)):
                (out_path / name).mkdir()
                save_file(state(model), str(out_path / name / "weights.safetensors"))
                (out_path / name / "history.json").write_text(json.dumps(model.history_))

if __name__ == "__main__":
    main(*sys.argv[1:3])
