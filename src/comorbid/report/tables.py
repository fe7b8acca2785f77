"""Terminal tables of results (rich): the reported metrics per model / decoder, ranking metrics.

Shared by the ``comorbid`` command and ``make demo``; here so that neither imports the other.
"""

from __future__ import annotations

from rich.table import Table

from comorbid.evaluation import RANKING_METRICS, REPORTED_METRICS


def metrics_table(title: str, rows: dict[str, dict[str, float]], std: dict | None = None) -> Table:
    """A rich table: one row per key (model / decoder), one column per reported metric."""
    table = Table(title=title)
    table.add_column("model / decoder")
    for metric in REPORTED_METRICS:
        table.add_column(metric, justify="right")
    for name, values in rows.items():
        cells = []
        for metric in REPORTED_METRICS:
            cell = f"{values[metric]:.3f}"
            if std is not None:
                cell += f" ± {std[name][metric]:.3f}"
            cells.append(cell)
        table.add_row(name, *cells)
    return table


def ranking_table(title: str, values: dict[str, float], std: dict[str, float] | None = None) -> Table:
    """A one-row rich table of the ranking metrics of the marginals (decoder-independent)."""
    table = Table(title=title)
    for metric in RANKING_METRICS:
        table.add_column(metric, justify="right")
    table.add_row(*(f"{values[m]:.3f}" + (f" ± {std[m]:.3f}" if std is not None else "") for m in RANKING_METRICS))
    return table
