"""Tickets against baselines at every sparsity: a table and plots, from the results folder;
what pruning did to the masks (scale_lth.report.masks) and how stable the trunk's trained
weights are to it (scale_lth.report.stability)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from scale_lth.report.masks import (
    MaskAnalytics,
    analyse,
    format_overlaps,
    mask_metrics,
    plot_densities,
)
from scale_lth.report.plots import plot
from scale_lth.report.stability import (
    Stability,
    format_stability,
    stability_metrics,
    stability_to_pruning,
)
from scale_lth.report.table import Row, collect, format_table
from scale_lth.results import Layout

__all__ = [
    "Report",
    "Row",
    "collect",
    "format_overlaps",
    "format_stability",
    "format_table",
    "plot",
    "write_report",
]


@dataclass(frozen=True)
class Report:
    layout: Layout
    rows: list[Row]
    masks: MaskAnalytics
    stability: list[Stability]
    plots: list[Path]

    @property
    def files(self) -> list[Path]:
        """What a tracking store keeps of the report: the plots and ``masks.json``."""
        return [*self.plots, self.layout.report_dir / "masks.json"]

    def metrics_by_replicate(self) -> dict[int, list[tuple[str, float, int]]]:
        """Each replicate's own mask analytics and stability, ``(name, value, level)``."""
        replicates = {key.replicate for key in self.layout.finished()}
        return {
            r: mask_metrics(analyse(self.layout, {r}))
            + stability_metrics([each for each in self.stability if each.replicate == r])
            for r in replicates
        }

    def as_dict(self) -> dict:
        return {
            "rows": [row.as_dict() for row in self.rows],
            "masks": self.masks.as_dict(),
            "stability_to_pruning": [each.as_dict() for each in self.stability],
        }

    def text(self) -> str:
        """The table, the mask overlaps and the stability to pruning, for a console."""
        return "\n".join(
            [format_table(self.rows), format_overlaps(self.masks), format_stability(self.stability)]
        )


def write_report(root: Path, title: str) -> Report:
    """Collect the finished runs under ``root``; write ``report/report.json``,
    ``report/masks.json`` (the mask analytics and the stability to pruning) and the PNGs."""
    layout = Layout(root)
    rows = collect(layout)
    masks = analyse(layout)
    stability = stability_to_pruning(layout)
    folder = layout.report_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps([r.as_dict() for r in rows], indent=1) + "\n")
    analytics = {**masks.as_dict(), "stability_to_pruning": [each.as_dict() for each in stability]}
    (folder / "masks.json").write_text(json.dumps(analytics, indent=1) + "\n")
    plots = plot(rows, folder, title) if rows else []
    density = plot_densities(masks, folder, title)
    return Report(layout, rows, masks, stability, plots + ([density] if density else []))
