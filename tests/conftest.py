import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # tests run in parallel workers on 2 cores

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path | None:
    root = Path(os.environ.get("COMORBID_DATA", REPO.parent / "shared" / "data"))
    return root if root.is_dir() else None


@pytest.fixture
def data_dir() -> Path:
    root = shared_data()
    if root is None:
        pytest.skip("shared data not found (set COMORBID_DATA)")
    return root


@pytest.fixture
def cmc_path(data_dir) -> Path:
    path = data_dir / "cmc2007" / "2007ChallengeTrainData.xml"
    if not path.is_file():
        pytest.skip("CMC 2007 not found")
    return path


WORDS = {
    "fever": "patient has fever and high temperature",
    "cough": "persistent cough for three days",
    "pneumonia": "right lower lobe pneumonia consolidation",
}


def tiny_text_rows(n: int = 60, seed: int = 0):
    """Texts whose words decide their labels, with a dependence: pneumonia excludes cough."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        labels = [name for name in ("fever", "cough", "pneumonia") if rng.random() < 0.45]
        if "pneumonia" in labels and "cough" in labels:
            labels.remove("cough")
        text = " ".join(WORDS[name] for name in labels) or "normal chest radiograph"
        rows.append((f"r{i}", text + f" filler{rng.randint(0, 5)}", labels))
    return rows


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    import csv

    path = tmp_path / "notes.csv"
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "text", "labels"])
        for row_id, text, labels in tiny_text_rows():
            writer.writerow([row_id, text, ";".join(labels)])
    return path


@pytest.fixture
def float64():
    """Run a test in float64 (exactness checks against enumeration), then restore the default."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
