"""Tickets against baselines at every sparsity: a table and plots, from the results folder;
what their networks cost to run (scale_lth.report.cost), what pruning did to the masks
(scale_lth.report.masks), how stable the trunk's trained weights are to it
(scale_lth.report.pruning_stability) and to SGD noise (scale_lth.report.instability)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scale_lth.report.cost import Costs, format_costs, plot_costs, read_costs, with_costs
from scale_lth.report.instability import (
    Instability,
    format_instability,
    instability_metrics,
    measured,
    plot_instability,
    rewind_choices,
)
from scale_lth.report.masks import (
    MaskAnalytics,
    analyse,
    format_overlaps,
    mask_metrics,
    plot_densities,
)
from scale_lth.report.plots import plot
from scale_lth.report.pruning_stability import (
    PruningStability,
    format_pruning_stability,
    pruning_stability_metrics,
    stability_to_pruning,
)
from scale_lth.report.table import (
    Row,
    collect,
    curve_metrics,
    format_table,
    method_curves,
    summary_metrics,
)
from scale_lth.results import Layout
from scale_lth.storage import atomic_write_json

__all__ = [
    "Report",
    "Row",
    "collect",
    "format_overlaps",
    "format_pruning_stability",
    "format_table",
    "plot",
    "write_report",
]


@dataclass(frozen=True)
class Report:
    layout: Layout
    rows: list[Row]
    masks: MaskAnalytics
    pruning_stability: list[PruningStability]
    instability: list[Instability]
    choices: dict[int, dict]  # ``rewinding.step: auto``'s, by replicate
    plots: list[Path]
    costs: Costs | None  # ``cost.json``, where scale_lth.cost wrote one

    @property
    def files(self) -> list[Path]:
        """What a tracking store keeps of the report: the plots, ``masks.json`` and, once
        measured, ``instability.json`` and ``cost.json``."""
        folder = self.layout.report_dir
        measured = [folder / "instability.json"] if self.instability or self.choices else []
        costs = [self.layout.cost_path] if self.costs is not None else []
        return [*self.plots, folder / "masks.json", *measured, *costs]

    def metrics_by_replicate(self) -> dict[int, list[tuple[str, float, int]]]:
        """Each replicate's own curve, mask analytics, stability and instability, ``(name,
        value, step)``: the level is the step, but the dense instability's is its start step k."""
        replicates = {key.replicate for key in self.layout.finished()}
        return {
            r: curve_metrics(self.layout, r)
            + mask_metrics(analyse(self.layout, {r}))
            + pruning_stability_metrics(
                [each for each in self.pruning_stability if each.replicate == r]
            )
            + instability_metrics(
                [each for each in self.instability if each.replicate == r], self.choices.get(r)
            )
            for r in replicates
        }

    def summary_metrics(self) -> list[tuple[str, float, int]]:
        """The table over replicates, ``(name, value, level)``."""
        return summary_metrics(self.rows)

    def method_curves(self) -> dict[str, list[tuple[str, float, int]]]:
        """Each method's curve over replicates, ``(name, value, step)``, by method."""
        return method_curves(self.rows)

    def analytics(self) -> dict:
        """``masks.json``: the mask analytics and the stability to pruning."""
        return {
            **self.masks.as_dict(),
            "stability_to_pruning": [each.as_dict() for each in self.pruning_stability],
        }

    def instability_record(self) -> dict:
        """``instability.json``: every path measurement and every automatic rewind point."""
        return {
            "instability": [each.as_dict() for each in self.instability],
            "rewind_choices": {str(r): choice for r, choice in self.choices.items()},
        }

    def as_dict(self) -> dict:
        return {
            "rows": [row.as_dict() for row in self.rows],
            "masks": self.masks.as_dict(),
            "stability_to_pruning": [each.as_dict() for each in self.pruning_stability],
            **self.instability_record(),
            "latency_measured": self.costs.latency if self.costs is not None else None,
        }

    def text(self) -> str:
        """The table, the costs, the mask overlaps, the stability to pruning and the
        instability, for a console."""
        parts = [
            format_table(self.rows),
            format_costs(self.rows, self.costs),
            format_overlaps(self.masks),
            format_pruning_stability(self.pruning_stability),
            format_instability(self.instability, self.choices),
        ]
        return "\n".join(part for part in parts if part)


def write_report(root: Path, title: str) -> Report:
    """Collect the finished runs under ``root`` with their costs from ``report/cost.json``
    (where scale_lth.cost wrote it); write ``report/report.json``, ``report/masks.json`` (the
    mask analytics and the stability to pruning), ``report/instability.json`` and the PNGs."""
    layout = Layout(root)
    costs = read_costs(layout)
    rows = with_costs(collect(layout), costs)
    masks = analyse(layout)
    instability = measured(layout)
    folder = layout.report_dir
    folder.mkdir(parents=True, exist_ok=True)
    plots = plot(rows, folder, title) + plot_costs(rows, costs, folder, title) if rows else []
    extra = [plot_densities(masks, folder, title), plot_instability(instability, folder, title)]
    report = Report(
        layout,
        rows,
        masks,
        stability_to_pruning(layout),
        instability,
        rewind_choices(layout),
        plots + [path for path in extra if path],
        costs,
    )
    for name, record in (
        ("report.json", [r.as_dict() for r in rows]),
        ("masks.json", report.analytics()),
        ("instability.json", report.instability_record()),
    ):
        atomic_write_json(folder / name, record)
    return report
