"""Cross-validate one joint model with head options: how the variant rows of docs/models.md were first measured.

Superseded by ``comorbid cv DATA --model NAME --head-option KEY=VALUE --json OUT`` (same folds and
decoders), and kept because ``benchmarks/results/cmc_joint_models.json`` names it. Unlike the
CLI it trains with a bare ``TrainConfig(seed=...)`` (not the encoder's training defaults: the
clinical encoder's L1 penalty is not applied), leaves ``nonempty`` at ``auto`` and uses one
torch thread; the docs restate those rows as CLI commands with the flags of that time.

    PYTHONPATH=src python benchmarks/cmc_variants.py --model mixture --option n_components=4
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from comorbid.data import load_dataset
from comorbid.evaluation import cross_validate
from comorbid.model import MultiLabelModel
from comorbid.training import TrainConfig

DEFAULT_DATA = Path(os.environ.get("COMORBID_DATA", "../shared/data")) / "cmc2007" / "2007ChallengeTrainData.xml"


def parse_option(text: str) -> tuple[str, object]:
    """``key=value``; the value is read as JSON when it parses (numbers, lists), else a string."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"Expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--model", required=True)
    parser.add_argument("--option", type=parse_option, action="append", default=[], help="head option KEY=VALUE")
    parser.add_argument("--decode", default="hamming,subset,instance-f1")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = dict(args.option)
    data = load_dataset(args.data)
    start = time.perf_counter()
    result = cross_validate(
        data, lambda: MultiLabelModel(args.model, head_options=options, train=TrainConfig(seed=args.seed)),
        args.decode.split(","), args.folds, args.seed,
    )
    result.update(model=args.model, head_options=options, wall_s=time.perf_counter() - start)
    for decoder, metrics in result["metrics"].items():
        print(f"{args.model} {options} / {decoder}: subset accuracy {metrics['subset_accuracy']:.3f}, "
              f"instance F1 {metrics['instance_f1']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
