"""How far two saved models are apart: largest weight difference per tensor, and on DATA the
marginals' largest and mean difference and the share of notes with the same instance-f1 codes.

Usage: `python benchmarks/ddp_agree.py MODEL_A MODEL_B DATA` (docs/distributed.md: a one-process
model against a torchrun one).
"""

import sys

import torch
from safetensors.torch import load_file

from comorbid.data import load_dataset
from comorbid.model import WEIGHTS_FILE, MultiLabelModel


def main(first: str, second: str, data: str) -> None:
    torch.set_num_threads(1)
    dataset = load_dataset(data)
    a, b = load_file(f"{first}/{WEIGHTS_FILE}"), load_file(f"{second}/{WEIGHTS_FILE}")
    print("largest weight difference:", {k: round((a[k].double() - b[k].double()).abs().max().item(), 4) for k in a})
    sets_a, marginals_a = MultiLabelModel.load(first).predict_with_marginals(dataset, ["instance-f1"])
    sets_b, marginals_b = MultiLabelModel.load(second).predict_with_marginals(dataset, ["instance-f1"])
    gap = abs(marginals_a - marginals_b)
    print(f"marginals: largest difference {gap.max():.4f}, mean {gap.mean():.2e}; same instance-f1 codes for "
          f"{(sets_a['instance-f1'] == sets_b['instance-f1']).all(1).mean():.1%} of {len(dataset)} notes")


if __name__ == "__main__":
    main(*sys.argv[1:4])
