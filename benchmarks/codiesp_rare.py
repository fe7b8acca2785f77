"""Rare and never-seen codes on CodiEsp's official split: train on ``train.jsonl``, score ``dev.jsonl``.

    python -m benchmarks.codiesp_rare [--model independent] [--descriptions auto|on|off]
        [--codes train|all|FILE] [--decode micro-f1] [--json OUT.json]

``--codes train``: the label space is the codes of the training notes (dev codes never seen in
training are unknown to the model and count as missed); ``all``: also every code of the dev
notes, as a candidate list (they enter with no training note: only their descriptions can
suggest them; this is an oracle list, the codes a coder would choose from being far more);
``FILE``: the training codes and the codes listed in FILE (one a line).

Reports the ranking metrics of ``comorbid evaluate`` (codes ranked by marginal; unknown gold
codes count as misses), the decoder's micro-F1, and :func:`comorbid.evaluation.rare_code_scores`
(codes with <= 2 training notes; never-seen codes). CodiEsp (CLEF eHealth 2020,
Miranda-Escalada et al.; CC BY 4.0) from ``$COMORBID_DATA/codiesp``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.report import emit_json
from comorbid.data import load_dataset
from comorbid.data.labels import align_columns, names_with_unknown
from comorbid.data.paths import data_root
from comorbid.evaluation import evaluate_predictions, ranking_scores, rare_code_scores
from comorbid.heads.base import label_counts
from comorbid.model import MultiLabelModel


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="chain")
    parser.add_argument("--descriptions", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--strength", type=float, default=None, help="description_strength k")
    parser.add_argument("--codes", default="train")
    parser.add_argument("--decode", default="micro-f1")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    root = data_root() / "codiesp"
    train = load_dataset(str(root / "train.jsonl"))
    dev = load_dataset(str(root / "dev.jsonl"))
    names = list(train.label_names)
    if args.codes == "all":
        names += [name for name in dev.label_names if name not in set(names)]
    elif args.codes != "train":
        listed = [line.strip() for line in open(args.codes, encoding="utf-8") if line.strip()]
        names += [name for name in dict.fromkeys(listed) if name not in set(names)]
    train = train.with_label_names(names)
    head_options = {"descriptions": {"auto": "auto", "on": True, "off": False}[args.descriptions]}
    if args.strength is not None:
        head_options["description_strength"] = args.strength
    start = time.perf_counter()
    model = MultiLabelModel(args.model, head_options=head_options).fit(train, decoders=[args.decode])
    train_s = time.perf_counter() - start
    known, unknown = names_with_unknown(model.label_names_, dev.label_names)
    aligned = dev.with_label_names(known)
    start = time.perf_counter()
    predictions, marginals = model.predict_with_marginals(aligned, [args.decode])
    predict_s = time.perf_counter() - start
    m = len(model.label_names_)
    padded = {d: align_columns(p, model.label_names_, known) for d, p in predictions.items()}
    sets = evaluate_predictions(aligned.labels, padded, known)
    ranked = ranking_scores(aligned.labels[:, :m], marginals, aligned.labels[:, m:])
    rare = rare_code_scores(aligned.labels[:, :m], marginals, predictions[args.decode], label_counts(train.labels),
                            aligned.labels[:, m:])
    result = {"model": args.model, "descriptions": args.descriptions, "strength": args.strength,
              "codes": args.codes, "labels": m, "descriptions_used": bool(model.head_.options.get("descriptions")),
              "train_s": round(train_s, 1), "predict_s": round(predict_s, 1),
              "micro_f1": sets[args.decode]["micro_f1"], **ranked, **rare}
    emit_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
