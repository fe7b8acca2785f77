"""A model report as one self-contained HTML page (figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import datetime as _dt
from html import escape
from typing import Any, Sequence

import numpy as np

from comorbid.report.plots import error_pairs_png, reliability_png
from comorbid.metrics.calibration import reliability
from comorbid.report.stats import error_pairs, per_label_scores

_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 70em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; } td.text { text-align: left; }
img { max-width: 100%; }
.warning { background: #fdd; border: 2px solid #c00; padding: 0.6em 1em; font-weight: bold; }
"""
#: What the per-code table shows for precision, recall and F1 of a code with no support and no
#: prediction: undefined, not 0.
UNDEFINED = "—"


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(header: list[str], rows: list[list[Any]], text_columns: set[int]) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            shown = f"{value:.3f}" if isinstance(value, float) else ("" if value is None else str(value))
            cells.append(f'<td class="text">{escape(shown)}</td>' if i in text_columns else f"<td>{escape(shown)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def render_report(
    title: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    probabilities: np.ndarray,
    label_names: list[str],
    descriptions: dict[str, str | None],
    summary: dict[str, float],
    bins: int = 10,
    max_heatmap_labels: int = 25,
    top_pairs: int = 20,
    warnings: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> str:
    """The HTML page of a report from gold ``y_true``, decoded ``y_pred`` and marginals, all ``[N, M]``.

    ``warnings`` are shown as banners above everything else (e.g. scored on training rows);
    ``notes`` as plain paragraphs under the title (e.g. where the predictions come from).
    """
    scores = per_label_scores(y_true, y_pred, label_names)
    scores.sort(key=lambda s: (-s.support, s.label))
    has_descriptions = any(descriptions.get(name) for name in label_names)
    header = ["code", *(["description"] if has_descriptions else []), "support", "predicted", "precision", "recall", "F1"]
    rows = [[s.label, *([descriptions.get(s.label)] if has_descriptions else []), s.support, s.predicted,
             *((s.precision, s.recall, s.f1) if s.support or s.predicted else (UNDEFINED,) * 3)] for s in scores]

    pairs = error_pairs(y_true, y_pred)
    involved = np.flatnonzero(pairs.sum(0) + pairs.sum(1))
    involved = involved[np.argsort(-(pairs.sum(0) + pairs.sum(1))[involved], kind="stable")][:max_heatmap_labels]
    involved = np.sort(involved)
    order = np.dstack(np.unravel_index(np.argsort(-pairs, axis=None, kind="stable"), pairs.shape))[0]
    pair_rows = []
    for j, k in order[:top_pairs]:
        if pairs[j, k] == 0:
            break
        pair_rows.append([label_names[j], descriptions.get(label_names[j]), label_names[k],
                          descriptions.get(label_names[k]), int(pairs[j, k])])
    calibration = reliability(y_true, probabilities, bins)

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        *(f'<p class="warning">WARNING: {escape(warning)}</p>' for warning in warnings),
        *(f'<p class="note">{escape(note)}</p>' for note in notes),
        f"<p>{len(y_true)} rows, {len(label_names)} labels; generated "
        f"{escape(_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))}.</p>",
        "<h2>Summary</h2>",
        _table(["metric", "value"], [[name, float(value)] for name, value in summary.items()], {0}),
        "<h2>Per-code precision, recall and F1</h2>",
        _table(header, rows, {0, 1} if has_descriptions else {0}),
        "<h2>Codes given in place of missed codes</h2>",
        "<p>For each pair, the rows where the first code was predicted but is not gold while the "
        "second code is gold but was not predicted.</p>",
    ]
    if pair_rows:
        parts.append(_table(["predicted (wrong)", "description", "missed (gold)", "description", "rows"],
                            pair_rows, {0, 1, 2, 3}))
        sub = pairs[np.ix_(involved, involved)]
        parts.append(_image(error_pairs_png(sub, [label_names[j] for j in involved]), "error pairs heatmap"))
    else:
        parts.append("<p>No row has both a wrong and a missed code.</p>")
    parts += [
        "<h2>Reliability of the marginal probabilities</h2>",
        f"<p>Expected calibration error over all {calibration.counts.sum()} (row, label) pairs, "
        f"{bins} equal-width bins: <b>{calibration.ece:.4f}</b>.</p>",
        _image(reliability_png(calibration), "reliability diagram"),
        _table(["bin", "pairs", "mean probability", "gold frequency"],
               [[f"[{lo:.1f}, {hi:.1f}{']' if i == bins - 1 else ')'}", int(n),
                 None if n == 0 else float(c), None if n == 0 else float(f)]
                for i, (lo, hi, n, c, f) in enumerate(zip(calibration.edges[:-1], calibration.edges[1:],
                                                          calibration.counts, calibration.confidence,
                                                          calibration.frequency))], {0}),
        "</body></html>",
    ]
    return "\n".join(parts)

