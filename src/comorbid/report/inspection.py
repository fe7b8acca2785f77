"""``comorbid inspect`` shown: rich tables for the terminal, one self-contained HTML page."""

from __future__ import annotations

import datetime as _dt
from html import escape

import numpy as np
from rich.table import Table

from comorbid.data.labels import align_columns
from comorbid.heads.chain import mutual_information
from comorbid.inspection import Inspection
from comorbid.report.html import _STYLE, _image, _table
from comorbid.report.plots import bars_png, heatmap_png

#: Metric names as the tables show them (Hamming: accuracy, 1 - Hamming loss).
SHOWN = {"subset_accuracy": "subset accuracy", "instance_f1": "instance F1", "micro_f1": "micro-F1",
         "hamming": "1 - Hamming loss"}


def _statistics_rows(result: Inspection) -> list[list]:
    s, d = result.statistics, result.dependence
    return [
        ["rows, labels", f"{s.rows}, {s.labels}"],
        ["labels per row (cardinality)", f"{s.cardinality:.2f} (max {s.max_labels_per_row}, {s.empty_rows} empty rows)"],
        ["distinct label sets", f"{s.distinct_sets} ({100 * s.unique_set_rows:.0f}% of rows have a set seen once)"],
        ["pairwise mutual information", f"{s.total_pairwise_mi:.3f} nats over the {s.pair_labels} most frequent labels"],
        ["exclusions", f"{s.n_exclusions} frequent pairs never together (expected >= 3 times if independent)"],
        ["held-out log-likelihood per row",
         f"{d.joint_model} {d.joint_log_likelihood:.3f}, independent {d.independent_log_likelihood:.3f} "
         f"({d.heldout_rows} held-out rows, models fitted on {d.train_rows})"],
        ["conditional dependence (gain)", f"{d.gain:+.3f} ± {d.gain_se:.3f} nats/row"],
    ]


def _pair_rows(pairs) -> list[list]:
    return [[p.first, p.second, p.count_first, p.count_second, p.together, f"{p.expected:.1f}",
             f"{p.mutual_information:.4f}"] for p in pairs]


PAIR_HEADER = ["label", "label", "rows", "rows", "together", "expected if independent", "MI (nats)"]
GAIN_HEADER = ["metric", "Bayes decoder", "thresholded (expected)", "decoder (expected)", "predicted gain",
               "observed gain (held-out rows)"]


def _gain_rows(result: Inspection) -> list[list]:
    return [[SHOWN.get(g.metric, g.metric), g.decoder, f"{g.expected_baseline:.3f}", f"{g.expected_decoder:.3f}",
             f"{g.predicted_gain:+.3f}" + (f" ± {g.predicted_gain_se:.3f}" if g.predicted_gain_se else ""),
             f"{g.observed_gain:+.3f}"] for g in result.gains]


def _code_rows(result: Inspection, top: int) -> list[list]:
    codes = sorted(result.dependence.per_code.items(), key=lambda item: -abs(item[1]))[:top]
    return [[name, f"{gain:+.4f}"] for name, gain in codes]


def inspection_tables(result: Inspection, top: int = 10) -> list[Table]:
    """The terminal summary: label statistics and dependence, top pairs, exclusions, predicted
    gains, per-code gains, recommendations."""
    tables = []

    def table(title: str, header: list[str], rows: list[list], text_columns: int = 2) -> None:
        if not rows:
            return
        t = Table(title=title)
        for i, name in enumerate(header):
            t.add_column(name, justify="left" if i < text_columns else "right")
        for row in rows:
            t.add_row(*(str(cell) for cell in row))
        tables.append(t)

    table(f"{result.data}: labels and dependence", ["", "value"], _statistics_rows(result))
    table("label pairs of largest mutual information", PAIR_HEADER, _pair_rows(result.statistics.top_pairs[:top]))
    table("exclusions: frequent pairs never together", PAIR_HEADER, _pair_rows(result.statistics.exclusions[:top]))
    table(f"codes whose held-out log-likelihood the {result.dependence.joint_model} changes most (nats/row)",
          ["code", "gain"], _code_rows(result, top))
    table(f"joint decoding vs marginals thresholded at 1/2, expected under the fitted {result.dependence.joint_model} "
          f"({result.samples} samples/row)", GAIN_HEADER, _gain_rows(result))
    table("recommendation", ["metric", "model", "decoder", "why"],
          [[SHOWN.get(r.metric, r.metric), r.model, r.decoder, r.reason] for r in result.recommendations], 4)
    return tables


def inspection_html(result: Inspection, labels: np.ndarray | None = None, label_names: list[str] | None = None,
                    heatmap_labels: int = 25, top: int = 20) -> str:
    """The HTML page of an inspection; with the label matrix ``[N, M]`` and its names, also a
    heatmap of the pairwise mutual information of the labels in the top pairs."""
    s, d = result.statistics, result.dependence
    title = f"comorbid inspect: {result.data}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>", f"<h1>{escape(title)}</h1>",
        f"<p>Does modelling dependence between the labels pay here, and for which metric? Generated "
        f"{escape(_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))} in {result.seconds:.0f} s "
        f"(seed {result.seed}).</p>",
        "<h2>Recommendation</h2>",
        _table(["metric", "model", "decoder", "why"],
               [[SHOWN.get(r.metric, r.metric), r.model, r.decoder, r.reason] for r in result.recommendations], {0, 1, 2, 3}),
        "<h2>Labels and dependence</h2>", _table(["", "value"], _statistics_rows(result), {0, 1}),
        "<h2>Predicted gain of joint decoding, per metric</h2>",
        f"<p>Expected value under the {escape(d.joint_model)} fitted on {d.train_rows} rows, on the inputs of the other "
        f"{d.heldout_rows} rows ({result.samples} label sets drawn per row), of each metric's Bayes decoder and of the "
        "marginals thresholded at 1/2; the observed gain uses those rows' gold labels instead.</p>",
        _table(GAIN_HEADER, _gain_rows(result), {0, 1}),
        _image(bars_png([SHOWN.get(g.metric, g.metric) for g in result.gains], [g.predicted_gain for g in result.gains],
                        "predicted gain of joint decoding", "gain (metric units)",
                        [g.predicted_gain_se for g in result.gains]), "predicted gain per metric"),
    ]
    if d.per_code:
        codes = sorted(d.per_code.items(), key=lambda item: -abs(item[1]))[:top]
        parts += [f"<h2>Codes whose held-out log-likelihood the {escape(d.joint_model)} changes most</h2>",
                  "<p>Mean per held-out row of the chain's factor log p(y_j | x, earlier labels) minus the independent "
                  "model's log p(y_j | x). The first codes of the chain condition on little, so their gain is near 0 "
                  "whatever the dependence.</p>",
                  _image(bars_png([name for name, _ in codes], [gain for _, gain in codes],
                                  "held-out log-likelihood gain per code", "nats per row"), "per-code gain")]
    parts += ["<h2>Label pairs of largest mutual information</h2>",
              _table(PAIR_HEADER, _pair_rows(s.top_pairs[:top]), {0, 1}) if s.top_pairs else "<p>None.</p>"]
    if labels is not None and label_names is not None and s.top_pairs:
        chosen = []
        for pair in s.top_pairs + s.exclusions:
            for name in (pair.first, pair.second):
                if name not in chosen and len(chosen) < heatmap_labels:
                    chosen.append(name)
        mi = mutual_information(align_columns(labels, label_names, chosen))
        parts.append(_image(heatmap_png(mi, chosen, "pairwise mutual information", "nats"), "mutual information"))
    parts += [f"<h2>Exclusions ({s.n_exclusions})</h2>",
              "<p>Frequent pairs of labels never seen together although independence would put them together at "
              "least 3 times.</p>",
              _table(PAIR_HEADER, _pair_rows(s.exclusions[:top]), {0, 1}) if s.exclusions else "<p>None.</p>",
              "<h2>Labels per row</h2>",
              _table(["labels", "rows"], [[k, c] for k, c in enumerate(s.size_counts) if c], set()),
              "</body></html>"]
    return "\n".join(parts)
