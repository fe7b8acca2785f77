"""`make demo`: independent vs chain, every decoder, on CMC 2007 or a built-in synthetic set."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from comorbid.data.dataset import MultiLabelDataset
from comorbid.evaluation import cross_validate
from comorbid.model import MultiLabelModel
from comorbid.report.tables import metrics_table
from comorbid.training import new_progress

MODELS = ("independent", "chain")
DECODERS = ("hamming", "subset", "instance-f1")
CMC_FILE = Path("cmc2007") / "2007ChallengeTrainData.xml"


def find_cmc(data: str | None) -> Path | None:
    """The CMC 2007 training file: ``--data`` (file or folder), else under ``data_root()``."""
    from comorbid.data.paths import data_root

    if data is not None:
        path = Path(data)
        if path.is_dir():
            path = path / CMC_FILE
        return path if path.is_file() else None
    root = data_root()
    if root is not None and (root / CMC_FILE).is_file():
        return root / CMC_FILE
    return None


def load_demo_data(data: str | None, console: Console) -> MultiLabelDataset:
    from comorbid.data import read_cmc_xml
    from comorbid.data.synthetic import synthetic_coding_set

    path = find_cmc(data)
    if path is None:
        where = data if data is not None else "$COMORBID_DATA or ../shared/data"
        console.print(
            f"CMC 2007 not found (looked in {where}); pass --data or set COMORBID_DATA. "
            "Running on the built-in synthetic coding set instead."
        )
        return synthetic_coding_set()
    console.print(f"data: {path}")
    return read_cmc_xml(path)


def run_demo(data: str | None, folds: int, seed: int, stdout: Console, console: Console) -> dict:
    dataset = load_demo_data(data, console)
    console.print(f"{len(dataset)} reports, {dataset.n_labels} codes; {folds}-fold iteratively stratified CV, seed {seed}")
    rows, std, seconds = {}, {}, {}
    with new_progress() as progress:
        for model in MODELS:
            start = time.perf_counter()
            result = cross_validate(dataset, lambda m=model: MultiLabelModel(m), DECODERS, folds, seed, progress, model)
            seconds[model] = time.perf_counter() - start
            for decoder in DECODERS:
                rows[f"{model} / {decoder}"] = result["metrics"][decoder]
                std[f"{model} / {decoder}"] = result["std"][decoder]
    stdout.print(metrics_table(f"{dataset.name}: {folds}-fold CV, seed {seed} (mean ± std over folds)", rows, std))
    for model, took in seconds.items():
        console.print(f"{model}: {took:.1f} s for {folds} folds")
    return rows
