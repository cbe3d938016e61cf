"""What the networks cost, read from ``report/cost.json`` (scale_lth.cost measures it before
the report is written; the report only reads it): each row's multiply-accumulates per example,
parameters and latency, means over the replicates the file holds; their table; and accuracy
against the multiply-accumulates (``accuracy_by_macs.png``) and against the latency
(``accuracy_by_latency.png``), drawn as the accuracy against the weights remaining is.

A weight ticket's multiply-accumulates count only the weights its mask keeps, while its latency
is the dense-shaped network's (a dense kernel multiplies zeros as fast as any weight): its
points stand one above the other in the latency plot. A channel ticket's both are its
compacted network's.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scale_lth.report.plots import XAxis, figure
from scale_lth.report.table import Row, accuracy_label, grid
from scale_lth.results import Layout
from scale_lth.storage import load_json

MACS = XAxis(
    "multiply-accumulates per example (the network as it runs)", lambda row: row.macs, ticked=False
)


@dataclass(frozen=True)
class Costs:
    """``cost.json``: how latency was measured, and each finished run's costs."""

    latency: dict[str, Any]  # the conditions: device, processor, threads, batches, counts
    runs: list[dict[str, Any]]

    @property
    def batch(self) -> int:
        """The batch size of the report's latencies (the first measured)."""
        return self.latency["batches"][0]

    @property
    def latency_axis(self) -> XAxis:
        """The latency of each row as a figure's x axis, labelled with how it was measured."""
        conditions = self.latency
        return XAxis(
            f"latency of a batch of {self.batch}, ms ({conditions['device']}, "
            f"torch threads: {conditions['threads']}, median of {conditions['repetitions']})",
            lambda row: row.latency_ms,
            ticked=False,
        )

    def described(self) -> str:
        """How the latencies were measured, in words."""
        conditions = self.latency
        return (
            f"latency of a batch of {self.batch} in ms on the {conditions['device']} "
            f"({conditions['processor']}, torch threads: {conditions['threads']}), the "
            f"{conditions['statistic']} of {conditions['repetitions']} passes after "
            f"{conditions['warmup']} untimed"
        )


def read_costs(layout: Layout) -> Costs | None:
    """The experiment's ``cost.json``; None where there is none."""
    if not layout.cost_path.is_file():
        return None
    record = load_json(layout.cost_path)
    return Costs(record["latency"], list(record["runs"].values()))


def with_costs(rows: list[Row], costs: Costs | None) -> list[Row]:
    """``rows`` with their costs: each the mean over its level's and branch's runs in
    ``costs`` (a row without any stays as it is)."""
    if costs is None:
        return rows
    runs: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for run in costs.runs:
        runs.setdefault((run["level"], run["branch"]), []).append(run)
    batch = str(costs.batch)
    costed = []
    for row in rows:
        measured = runs.get((row.level, row.branch))
        if measured:
            row = dataclasses.replace(
                row,
                macs=statistics.fmean(run["macs"] for run in measured),
                parameters=statistics.fmean(run["parameters"] for run in measured),
                latency_ms=statistics.fmean(run["latency_ms"][batch] for run in measured),
            )
        costed.append(row)
    return costed


def counted(value: float) -> str:
    """A count in three digits with its SI prefix: 266k, 4.09G."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g}{prefix}"
    return f"{value:.3g}"


def _cost_cell(row: Row) -> str:
    if row.macs is None or row.latency_ms is None:
        return ""
    return f"{counted(row.macs):>5} MACs {row.latency_ms:7.3g} ms"


def format_costs(rows: list[Row], costs: Costs | None) -> str:
    """Levels down, branches across: multiply-accumulates per example and latency; nothing
    where no row has costs."""
    if costs is None or all(row.macs is None for row in rows):
        return ""
    lines = grid(rows, _cost_cell, 21)
    lines.append(
        "cells: multiply-accumulates per example of the network as it runs (a channel ticket "
        "compacted, a weight ticket's kept weights) and "
        f"{costs.described()}; means over replicates"
    )
    return "\n".join(lines)


def plot_costs(rows: list[Row], costs: Costs | None, folder: Path, title: str) -> list[Path]:
    """Write ``accuracy_by_macs.png`` and ``accuracy_by_latency.png`` into ``folder`` where
    rows have costs; return their paths."""
    if costs is None or all(row.macs is None for row in rows):
        return []
    ylabel = f"{accuracy_label(rows)} (%)"
    return [
        figure(rows, axis, "accuracy_mean", "accuracy_std", ylabel, title, folder / name)
        for axis, name in (
            (MACS, "accuracy_by_macs.png"),
            (costs.latency_axis, "accuracy_by_latency.png"),
        )
    ]
