"""The papers' figures: accuracy and early-stop iteration against % weights remaining
(log scale, decreasing left to right, a tick at every density measured), one line per branch
with a +-std band; ``figure`` draws them against any x (the costs: scale_lth.report.cost)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scale_lth.methods import TICKET
from scale_lth.report.table import Row, accuracy_label
from scale_lth.results import branch_label, branch_order


@dataclass(frozen=True)
class XAxis:
    """What a figure puts on its x axis, on a log scale decreasing left to right (the dense
    network at the left, pruning going right)."""

    label: str
    value: Callable[[Row], float | None]  # a row's point; None where it was not measured
    ticked: bool  # a tick at every value measured (else the log scale's own ticks)


WEIGHTS = XAxis("% of weights remaining", lambda row: 100 * row.weights_remaining, ticked=True)


@dataclass(frozen=True)
class Line:
    label: str
    x: list[float]
    y: list[float]
    spread: list[float] | None  # +- band


def lines(rows: list[Row], value: str, spread: str | None, x: XAxis = WEIGHTS) -> list[Line]:
    """One line per branch in the registry's order, each starting at the dense network, in
    level order; rows ``x`` has no value for are left out."""
    branches = sorted({r.branch for r in rows}, key=branch_order)
    dense = [r for r in rows if r.branch == TICKET and r.level == 0]
    scale = 100 if "accuracy" in value else 1
    drawn = []
    for branch in branches:
        line = sorted(
            [r for r in rows if r.branch == branch] + (dense if branch != TICKET else []),
            key=lambda r: r.level,
        )
        points = [(at, r) for r in line if (at := x.value(r)) is not None]
        drawn.append(
            Line(
                branch_label(branch),
                [at for at, _ in points],
                [getattr(r, value) * scale for _, r in points],
                [100 * getattr(r, spread) for _, r in points] if spread else None,
            )
        )
    return drawn


def decreasing_log_axis(axes, label: str, ticks: set[float] | None) -> None:
    """x on a log scale, decreasing left to right, labelled; a tick at each of ``ticks`` where
    given."""
    import matplotlib.ticker

    axes.set_xscale("log")
    axes.invert_xaxis()
    axes.set_xlabel(label)
    if ticks is None:
        return
    fixed = sorted({round(value, 6) for value in ticks})
    axes.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(fixed))
    axes.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
    axes.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axes.tick_params(axis="x", labelrotation=90 if len(fixed) > 8 else 0)


def density_axis(axes, measured: set[float]) -> None:
    """% of weights remaining on a log scale, decreasing left to right, a tick at each
    density measured."""
    decreasing_log_axis(axes, WEIGHTS.label, measured)


def figure(
    rows: list[Row],
    x: XAxis,
    value: str,
    spread: str | None,
    ylabel: str,
    title: str,
    path: Path,
) -> Path:
    """``value`` (with its ``spread`` as a band) against ``x``, a line per branch, as ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn, axes = plt.subplots(figsize=(7, 4.5))
    measured: set[float] = set()
    for line in lines(rows, value, spread, x):
        axes.plot(line.x, line.y, marker="o", markersize=3, label=line.label)
        if line.spread is not None:
            low = [a - b for a, b in zip(line.y, line.spread, strict=True)]
            high = [a + b for a, b in zip(line.y, line.spread, strict=True)]
            axes.fill_between(line.x, low, high, alpha=0.2)
        measured.update(line.x)
    decreasing_log_axis(axes, x.label, measured if x.ticked else None)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    drawn.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    drawn.savefig(path, dpi=120)
    plt.close(drawn)
    return path


def plot(rows: list[Row], folder: Path, title: str) -> list[Path]:
    """Write ``accuracy.png`` and ``early_stop.png`` into ``folder``; return their paths."""
    return [
        figure(rows, WEIGHTS, "accuracy_mean", "accuracy_std", f"{accuracy_label(rows)} (%)",
               title, folder / "accuracy.png"),
        figure(rows, WEIGHTS, "early_stop_iteration", None, "early-stop iteration", title,
               folder / "early_stop.png"),
    ]  # fmt: skip
