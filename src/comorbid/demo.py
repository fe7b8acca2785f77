"""`make demo`: what comorbid is for, in under 3 minutes on CMC 2007 (or a built-in synthetic set).

1. The default coder (:class:`MultiLabelModel`: a chain over the clinical encoder) codes three
   uncoded notes: each suggested code with its probability, its ICD description and the words of
   the note that drove it (:mod:`comorbid.explain`, the ``linear`` method: log-odds shares).
2. Dependent vs independent: the independent and chain models under the hamming, subset and
   instance-f1 decoders, scored on reports neither trained on. By default one fixed split: the
   first fold of 5 iteratively stratified folds (seed 0) is held out, both models train on the
   other four (the coder of step 1 is that chain, reused); ``folds=K`` cross-validates instead
   (K trainings of each model: several minutes).

Without the CMC 2007 test file the notes are held-out rows (never trained on).
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from comorbid.data import read_cmc_xml
from comorbid.data.dataset import MultiLabelDataset
from comorbid.data.synthetic import synthetic_coding_set
from comorbid.data.splits import kfold_indices
from comorbid.evaluation import cross_validate, evaluate_predictions
from comorbid.explain import NoteExplanation, explain
from comorbid.model import MultiLabelModel
from comorbid.report.tables import metrics_table
from comorbid.training import new_progress

MODELS = ("independent", "chain")
DECODERS = ("hamming", "subset", "instance-f1")
NOTES_DECODER = "instance-f1"
CMC_FILE = Path("cmc2007") / "2007ChallengeTrainData.xml"
CMC_TEST_NAME = "2007ChallengeTestDataNoCodes.xml"
N_NOTES = 3
NOTE_CHARS = 220
#: The fixed split of the default comparison: fold 1 of this many held out.
SPLIT_FOLDS = 5


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


def load_demo_data(data: str | None, console: Console) -> tuple[MultiLabelDataset, Path | None]:
    """The coded reports, and the CMC training file they came from (``None``: synthetic)."""
    path = find_cmc(data)
    if path is None:
        where = data if data is not None else "$COMORBID_DATA or ../shared/data"
        console.print(
            f"CMC 2007 not found (looked in {where}); pass --data or set COMORBID_DATA. "
            "Running on the built-in synthetic coding set instead."
        )
        return synthetic_coding_set(), None
    console.print(f"data: {path}")
    return read_cmc_xml(path), path


def demo_notes(dataset: MultiLabelDataset, path: Path | None, seed: int, console: Console,
               held_out: np.ndarray | None = None) -> tuple[MultiLabelDataset, MultiLabelDataset, str]:
    """``(training rows, N_NOTES notes to code, where the notes come from)``.

    The notes are drawn (``seed``) from the CMC test file beside ``path`` when there is one (the
    coder then trains on every row of ``dataset``), else from the rows ``held_out`` (default:
    all rows) and left out of training: the coder never sees them, and their hand-assigned
    codes are shown beside its suggestions.
    """
    rng = np.random.default_rng(seed)
    test_path = path.with_name(CMC_TEST_NAME) if path is not None else None
    if test_path is not None and test_path.is_file():
        console.print(f"notes: {test_path}")
        test = read_cmc_xml(test_path)
        rows = np.sort(rng.choice(len(test), size=min(N_NOTES, len(test)), replace=False))
        return dataset, test.subset(rows), f"{test_path.name} (uncoded)"
    pool = np.arange(len(dataset)) if held_out is None else np.asarray(held_out)
    held = np.sort(rng.choice(pool, size=min(N_NOTES, len(dataset) - 1, len(pool)), replace=False))
    train = np.setdiff1d(np.arange(len(dataset)), held)
    return dataset.subset(train), dataset.subset(held), f"{dataset.name}, held out of training"


def shorten(text: str, width: int = NOTE_CHARS) -> str:
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder=" …")


def notes_table(title: str, explained: list[NoteExplanation], notes: MultiLabelDataset) -> Table:
    """One row per suggested code: the note (first row of each note), the code, its probability,
    ICD description and the words that carry most of its log-odds (with their share, :mod:`comorbid.explain`)."""
    table = Table(title=title, show_lines=False)
    table.add_column("note", ratio=3)
    table.add_column("code", no_wrap=True)
    table.add_column("p", justify="right", no_wrap=True)
    table.add_column("description", ratio=2)
    table.add_column("words that drove it (log-odds)", ratio=2)
    coded = notes.n_labels > 0
    for index, note in enumerate(explained):
        cell = f"[bold]{note.id}[/bold] {shorten(note.text)}"
        if coded:
            gold = [notes.label_names[j] for j in np.flatnonzero(notes.labels[index])]
            cell += f"\n[dim]coded by hand: {', '.join(gold) or '-'}[/dim]"
        rows = []
        for code in note.codes:
            words = [e for e in code.evidence if e.kind == "word"] or code.evidence[:1]
            rows.append((code.code, f"{code.probability:.2f}", code.description or "",
                         ", ".join(f"{e.text} ({e.weight:+.2f})" for e in words)))
        for k, row in enumerate(rows or [("-", "", "no code suggested", "")]):
            table.add_row(cell if k == 0 else "", *row, end_section=k == max(len(rows), 1) - 1)
    return table


def run_demo(data: str | None, folds: int | None, seed: int, stdout: Console, console: Console) -> dict:
    """Print the notes table, then the comparison: on one fixed split (``folds=None``) or by
    ``folds``-fold cross-validation. Returns what was printed, and the seconds each step took."""
    start = time.perf_counter()
    dataset, path = load_demo_data(data, console)
    split = None
    if folds is None:
        split = kfold_indices(dataset.labels, n_folds=SPLIT_FOLDS, seed=seed)[0]  # (train rows, test rows)
        _, notes, source = demo_notes(dataset, path, seed, console, held_out=split[1])
        train = dataset.subset(split[0])  # the notes, if from the training file, are held-out rows
    else:
        train, notes, source = demo_notes(dataset, path, seed, console)

    # 1. The default coder, three notes it has never seen.
    console.print(f"training the default coder (chain) on {len(train)} reports, {dataset.n_labels} codes")
    coder_start = time.perf_counter()
    with new_progress() as progress:
        model = MultiLabelModel().fit(train, progress)
    explained = explain(model, notes.inputs, notes.ids, decode=NOTES_DECODER, top_words=3)
    coder_seconds = time.perf_counter() - coder_start
    stdout.print(notes_table(f"The default coder on {len(notes)} notes of {source}: {NOTES_DECODER} decoder",
                             explained, notes))

    # 2. Dependent vs independent, every decoder, on reports neither model trained on.
    if split is not None:
        rows, std, seconds, caption = _compare_on_split(dataset, split, train, model, seed, console)
    else:
        rows, std, seconds, caption = _compare_by_cv(dataset, folds, seed, console)
    stdout.print(metrics_table(caption, rows, std))
    total = time.perf_counter() - start
    how = (f"one split ({len(split[1])} held-out reports; --folds K to cross-validate)" if split is not None
           else f"{folds} folds")
    if split is not None:
        steps = (f"independent trained and scored in {seconds['independent']:.0f} s, "
                 f"chain (the coder) scored in {seconds['chain']:.0f} s")
    else:
        steps = ", ".join(f"{name} {took:.0f} s" for name, took in seconds.items()) + f" for the {folds} folds"
    stdout.print(f"{how}. Coder trained and explained in {coder_seconds:.0f} s; {steps}; total {total:.0f} s.")
    return {"notes": [note.to_dict() for note in explained], "metrics": rows, "std": std, "folds": folds,
            "seconds": {"coder": coder_seconds, **seconds, "total": total}}


def _compare_on_split(dataset, split, train, chain, seed, console):
    """Both models on the held-out rows of ``split``: the independent model trained on ``train``,
    the chain already trained there (``chain``)."""
    test = dataset.subset(split[1])
    console.print(f"held out: {len(test)} of {len(dataset)} reports (fold 1 of {SPLIT_FOLDS}, seed {seed}); "
                  f"both models train on the other {len(train)}")
    rows, seconds = {}, {}
    for name in MODELS:
        model_start = time.perf_counter()
        if name == "chain":
            model = chain
        else:
            with new_progress() as progress:
                model = MultiLabelModel(name).fit(train, progress)
        scores = evaluate_predictions(test.labels, model.predict(test, DECODERS), test.label_names)
        seconds[name] = time.perf_counter() - model_start
        for decoder in DECODERS:
            rows[f"{name} / {decoder}"] = scores[decoder]
    # the binomial standard error of subset accuracy on this many reports: what one split can tell apart
    accuracy = max(values["subset_accuracy"] for values in rows.values())
    error = float(np.sqrt(accuracy * (1 - accuracy) / len(test)))
    caption = (f"{dataset.name}: {len(test)} held-out reports, one stratified split (seed {seed}); "
               f"standard error of subset accuracy ≈ {error:.3f}")
    return rows, None, seconds, caption


def _compare_by_cv(dataset, folds, seed, console):
    console.print(f"{len(dataset)} reports, {dataset.n_labels} codes; {folds}-fold iteratively stratified CV, seed {seed}")
    rows, std, seconds = {}, {}, {}
    with new_progress() as progress:
        for name in MODELS:
            model_start = time.perf_counter()
            result = cross_validate(dataset, lambda m=name: MultiLabelModel(m), DECODERS, folds, seed, progress, name)
            seconds[name] = time.perf_counter() - model_start
            for decoder in DECODERS:
                rows[f"{name} / {decoder}"] = result["metrics"][decoder]
                std[f"{name} / {decoder}"] = result["std"][decoder]
    return rows, std, seconds, f"{dataset.name}: {folds}-fold CV, seed {seed} (mean ± std over folds)"
