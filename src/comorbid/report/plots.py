"""Report figures as PNG bytes (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io

import numpy as np

from comorbid.metrics.calibration import Reliability


def _figure(*args, **kwargs):
    # The object-oriented API with the Agg canvas: no pyplot global state, no display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(*args, **kwargs)
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def reliability_png(stats: Reliability) -> bytes:
    """Reliability diagram (observed frequency vs mean probability per bin) over a count histogram."""
    figure = _figure(figsize=(5, 6))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    centers = (stats.edges[:-1] + stats.edges[1:]) / 2
    width = np.diff(stats.edges)
    filled = stats.counts > 0
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    top.bar(centers[filled], stats.frequency[filled], width=width[filled] * 0.9, alpha=0.6, label="observed frequency")
    top.plot(stats.confidence[filled], stats.frequency[filled], marker="o", color="black", label="bin mean")
    top.set_ylabel("share of gold labels")
    top.set_ylim(0, 1)
    top.set_title(f"Reliability of the marginals (ECE {stats.ece:.4f})")
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(centers, np.maximum(stats.counts, 0), width=width * 0.9, color="grey")
    bottom.set_yscale("log")
    bottom.set_ylabel("pairs")
    bottom.set_xlabel("predicted probability p(y_j = 1 | x)")
    bottom.set_xlim(0, 1)
    return _png(figure)


def error_pairs_png(matrix: np.ndarray, labels: list[str]) -> bytes:
    """Heatmap of ``matrix[j, k]``: rows predicted label ``j`` (false positive), columns missed ``k``."""
    size = max(4.0, 0.35 * len(labels) + 2)
    figure = _figure(figsize=(size, size))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Reds", interpolation="nearest")
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize="small")
    axes.set_yticks(range(len(labels)), labels, fontsize="small")
    axes.set_xlabel("gold code missed")
    axes.set_ylabel("code predicted wrongly")
    axes.set_title("Wrong code given in place of a missed one (rows)")
    for (j, k), value in np.ndenumerate(matrix):
        if value:  # white on the darker half of the colour map
            colour = "white" if value > matrix.max() / 2 else "black"
            axes.text(k, j, str(int(value)), ha="center", va="center", fontsize="x-small", color=colour)
    figure.colorbar(image, ax=axes, shrink=0.7)
    return _png(figure)


def heatmap_png(matrix: np.ndarray, labels: list[str], title: str, colour_label: str) -> bytes:
    """A square heatmap of ``matrix [L, L]`` with the labels on both axes (e.g. pairwise mutual
    information)."""
    size = max(4.0, 0.35 * len(labels) + 2)
    figure = _figure(figsize=(size, size))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="viridis", interpolation="nearest")
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize="small")
    axes.set_yticks(range(len(labels)), labels, fontsize="small")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, shrink=0.7, label=colour_label)
    return _png(figure)


def bars_png(names: list[str], values: list[float], title: str, xlabel: str,
             errors: list[float] | None = None) -> bytes:
    """Horizontal bars, one per name, with optional error bars (e.g. predicted gain per metric)."""
    figure = _figure(figsize=(6, max(2.0, 0.3 * len(names) + 1)))
    axes = figure.subplots()
    positions = np.arange(len(names))
    colours = ["tab:green" if value > 0 else "tab:red" for value in values]
    axes.barh(positions, values, xerr=errors, color=colours, alpha=0.8)
    axes.set_yticks(positions, names, fontsize="small")
    axes.invert_yaxis()
    axes.axvline(0.0, color="black", linewidth=0.8)
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    return _png(figure)
