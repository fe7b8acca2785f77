"""Bagged chains (``--ensemble 5``) against one chain, with the defaults otherwise, on the
bench's inner split of fold 1's training rows (no test row), CMC 2007.

    OMP_NUM_THREADS=1 PYTHONPATH=src python -m benchmarks.bagging_inner_split
"""

import time
from pathlib import Path

from benchmarks.inner_split import inner_split
from comorbid.data import data_root, read_cmc_xml
from comorbid.metrics import evaluate
from comorbid.model import MultiLabelModel


def main() -> None:
    data = read_cmc_xml((data_root() or Path("../shared/data")) / "cmc2007" / "2007ChallengeTrainData.xml")
    fit_on, score_on = inner_split(data)
    print(len(fit_on), "training rows,", len(score_on), "validation rows")
    for ensemble in (1, 5):
        start = time.perf_counter()
        model = MultiLabelModel(ensemble=ensemble).fit(fit_on)
        took = time.perf_counter() - start
        predictions = model.predict(score_on, ["hamming", "subset", "instance-f1"])
        for decoder, y in predictions.items():
            m = evaluate(score_on.labels, y)
            print(f"ensemble={ensemble} {decoder}: micro {m['micro_f1']:.3f} instance {m['instance_f1']:.3f} subset {m['subset_accuracy']:.3f} ({took:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
