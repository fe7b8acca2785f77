"""Model reports: per-code scores, codes confused with each other, calibration; one HTML page.

Example:
    >>> from comorbid.report import model_report   # doctest: +SKIP
    >>> html = model_report(model, dataset, decode="hamming")
"""

from __future__ import annotations

from comorbid.data.labels import align_columns, names_with_unknown
from comorbid.io import write_atomic
from comorbid.report.html import render_report
from comorbid.metrics.calibration import Reliability, reliability
from comorbid.report.stats import LabelScores, error_pairs, per_label_scores


def model_report(model, dataset, decode: str = "hamming", bins: int = 10) -> str:
    """The HTML report of a trained ``model`` on labelled ``dataset``, label sets from ``decode``.

    Labels of the data that the model does not know are added as never-predicted columns with
    probability 0 (they count as missed), as in ``comorbid evaluate``.
    """
    from comorbid.evaluation import evaluate_predictions
    from comorbid.explain import label_descriptions

    if dataset.n_labels == 0:
        raise ValueError(f"{dataset.name} has no labels: a report needs gold labels")
    names, _ = names_with_unknown(model.label_names, dataset.label_names)
    aligned = dataset.with_label_names(names)
    predicted = align_columns(model.predict(aligned, [decode])[decode], model.label_names, names)
    probabilities = align_columns(model.marginals(aligned), model.label_names, names)
    summary = evaluate_predictions(aligned.labels, {decode: predicted})[decode]
    title = f"comorbid report: {model.model_name} / {model.encoder_name} on {dataset.name} (decoder {decode})"
    return render_report(title, aligned.labels, predicted, probabilities, names, label_descriptions(names), summary,
                         bins=bins)


__all__ = ["LabelScores", "Reliability", "error_pairs", "model_report", "per_label_scores", "reliability",
           "render_report", "write_atomic"]
