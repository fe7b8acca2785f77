"""Model reports: per-code scores, codes confused with each other, calibration; one HTML page.

Example:
    >>> from comorbid.report import model_report   # doctest: +SKIP
    >>> html = model_report(model, dataset, decode="hamming")
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from comorbid.data.labels import align_columns, names_with_unknown
from comorbid.fingerprint import training_overlap_warning
from comorbid.io import OutputError, publish_directory, staging_directory, write_atomic
from comorbid.report.html import render_report
from comorbid.metrics.calibration import Reliability, reliability
from comorbid.report.stats import LabelScores, error_pairs, per_label_scores


def model_report(model, dataset, decode: str = "hamming", bins: int = 10) -> str:
    """The HTML report of a trained ``model`` on labelled ``dataset``, label sets from ``decode``.

    Labels of the data that the model does not know are added as never-predicted columns with
    probability 0 (they count as missed), as in ``comorbid evaluate``. When rows of ``dataset``
    were training rows of the model (its ``training_fingerprint``), a banner at the top says
    what fraction.
    """
    from comorbid.evaluation import evaluate_predictions
    from comorbid.explain import label_descriptions

    if dataset.n_labels == 0:
        raise ValueError(f"{dataset.name} has no labels: a report needs gold labels")
    names, _ = names_with_unknown(model.label_names_, dataset.label_names)
    aligned = dataset.with_label_names(names)
    predicted = align_columns(model.predict(aligned, [decode])[decode], model.label_names_, names)
    probabilities = align_columns(model.marginals(aligned), model.label_names_, names)
    summary = evaluate_predictions(aligned.labels, {decode: predicted})[decode]
    title = f"comorbid report: {model.model} / {model.encoder_name} on {dataset.name} (decoder {decode})"
    warning = training_overlap_warning(getattr(model, "training_fingerprint_", None), dataset.inputs, dataset.name)
    return render_report(title, aligned.labels, predicted, probabilities, names, label_descriptions(names), summary,
                         bins=bins, warnings=[warning] if warning else [])


def out_of_fold_report(out_of_fold, decode: str, title: str, folds: int, seed: int, bins: int = 10) -> str:
    """The HTML report of cross-validation's out-of-fold predictions (:class:`comorbid.evaluation.OutOfFold`)
    under decoder ``decode``: every row scored by the fold model that never saw it, so the page
    holds no in-sample number. The summary is the metrics over all rows at once
    (``out_of_fold.metrics()``), not the mean over folds that ``comorbid cv`` prints."""
    from comorbid.explain import label_descriptions

    names = out_of_fold.label_names
    summary = out_of_fold.metrics()[decode]
    note = (f"Out-of-fold predictions: {folds}-fold iteratively stratified cross-validation (seed {seed}); each of "
            f"the {len(out_of_fold.labels)} rows is predicted by the model of the fold that did not train on it. "
            "Summary: the metrics over all rows at once.")
    return render_report(title, out_of_fold.labels, out_of_fold.predictions[decode], out_of_fold.marginals, names,
                         label_descriptions(names), summary, bins=bins, notes=[note])


def report_file_name(decode: str) -> str:
    """The page of decoder ``decode`` in a report directory (``instance-f1.html``; characters other than
    letters, digits, ``.``, ``=`` and ``-`` become ``_``)."""
    return re.sub(r"[^A-Za-z0-9.=-]", "_", decode) + ".html"


INDEX_FILE = "index.html"


def write_cv_reports(directory, out_of_fold, title: str, folds: int, seed: int, bins: int = 10) -> Path:
    """One :func:`out_of_fold_report` per decoder of ``out_of_fold``, written together into
    ``directory`` (:func:`write_report_directory`); what ``comorbid cv --report DIR`` writes."""
    pages = {report_file_name(decode): out_of_fold_report(out_of_fold, decode, f"{title}, decoder {decode}, out of fold",
                                                          folds, seed, bins)
             for decode in out_of_fold.predictions}
    return write_report_directory(directory, pages)


def write_report_directory(directory, pages: dict[str, str]) -> Path:
    """Write ``{file name: page}`` and an ``index.html`` linking them into ``directory`` at once:
    built in a sibling, then renamed into place (:func:`comorbid.io.publish_directory`), so
    readers see the old reports or the new ones, never a mix. ``directory`` must be missing,
    empty, or a report directory (one holding our ``index.html``), whose pages are replaced."""
    from html import escape

    directory = Path(directory)
    check_report_destination(directory)
    index = "\n".join(['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8"><title>comorbid reports</title>',
                       "</head><body><h1>comorbid reports</h1><ul>",
                       *(f'<li><a href="{escape(name)}">{escape(name)}</a></li>' for name in pages),
                       f"</ul><!-- {REPORT_DIRECTORY_MARK} --></body></html>"])
    staging = staging_directory(directory)
    try:
        for name, page in {**pages, INDEX_FILE: index}.items():
            (staging / name).write_text(page, encoding="utf-8")
        own = {*pages, INDEX_FILE, *(p.name for p in directory.glob("*.html"))} if directory.is_dir() else set()
        publish_directory(staging, directory, own)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


REPORT_DIRECTORY_MARK = "comorbid report directory"


def check_report_destination(directory) -> None:
    """Refuse, before any work, a report directory over something that is not one (nothing is deleted)."""
    directory = Path(directory)
    if not directory.exists():
        return
    if not directory.is_dir():
        raise OutputError(f"{directory}: exists and is not a directory")
    entries = sorted(entry.name for entry in directory.iterdir())
    index = directory / INDEX_FILE
    ours = index.is_file() and REPORT_DIRECTORY_MARK in index.read_text(encoding="utf-8", errors="replace")
    if entries and not (ours and all(name.endswith(".html") for name in entries)):
        raise OutputError(f"{directory}: exists, is not empty and is not a comorbid report directory "
                          f"(it holds {', '.join(entries[:5])}{', ...' if len(entries) > 5 else ''}); not replacing it")


__all__ = ["LabelScores", "Reliability", "error_pairs", "model_report", "out_of_fold_report", "per_label_scores",
           "reliability", "render_report", "write_atomic", "write_cv_reports", "write_report_directory"]
