"""Tickets against baselines at every sparsity: a table and plots, from the results folder."""

from __future__ import annotations

import json
from pathlib import Path

from scale_lth.report.plots import plot
from scale_lth.report.table import Row, collect, format_table
from scale_lth.results import Layout

__all__ = ["Row", "collect", "format_table", "plot", "write_report"]


def write_report(root: Path, title: str) -> tuple[list[Row], list[Path]]:
    """Collect the finished runs under ``root``; write ``report/report.json`` and the PNGs."""
    layout = Layout(root)
    rows = collect(layout)
    folder = layout.report_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps([r.as_dict() for r in rows], indent=1) + "\n")
    return rows, plot(rows, folder, title) if rows else []
