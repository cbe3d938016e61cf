"""The papers' figures: accuracy and early-stop iteration against % weights remaining
(log scale, decreasing left to right, a tick at every density measured), one line per branch
with a +-std band."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scale_lth.methods import TICKET
from scale_lth.report.table import Row, accuracy_label
from scale_lth.results import branch_label, branch_order


@dataclass(frozen=True)
class Line:
    label: str
    x: list[float]  # % of weights remaining
    y: list[float]
    spread: list[float] | None  # +- band


def lines(rows: list[Row], value: str, spread: str | None) -> list[Line]:
    """One line per branch in the registry's order, each starting at the dense network."""
    branches = sorted({r.branch for r in rows}, key=branch_order)
    dense = [r for r in rows if r.branch == TICKET and r.level == 0]
    drawn = []
    for branch in branches:
        line = sorted(
            [r for r in rows if r.branch == branch] + (dense if branch != TICKET else []),
            key=lambda r: -r.weights_remaining,
        )
        scale = 100 if "accuracy" in value else 1
        drawn.append(
            Line(
                branch_label(branch),
                [100 * r.weights_remaining for r in line],
                [getattr(r, value) * scale for r in line],
                [100 * getattr(r, spread) for r in line] if spread else None,
            )
        )
    return drawn


def density_axis(axes, measured: set[float]) -> None:
    """% of weights remaining on a log scale, decreasing left to right, a tick at each
    density measured."""
    import matplotlib.ticker

    ticks = sorted({round(value, 6) for value in measured})
    axes.set_xscale("log")
    axes.invert_xaxis()
    axes.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    axes.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
    axes.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axes.tick_params(axis="x", labelrotation=90 if len(ticks) > 8 else 0)
    axes.set_xlabel("% of weights remaining")


def _figure(rows: list[Row], value: str, spread: str | None, ylabel: str, title: str, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for line in lines(rows, value, spread):
        axes.plot(line.x, line.y, marker="o", markersize=3, label=line.label)
        if line.spread is not None:
            low = [a - b for a, b in zip(line.y, line.spread, strict=True)]
            high = [a + b for a, b in zip(line.y, line.spread, strict=True)]
            axes.fill_between(line.x, low, high, alpha=0.2)
    density_axis(axes, {100 * r.weights_remaining for r in rows})
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot(rows: list[Row], folder: Path, title: str) -> list[Path]:
    """Write ``accuracy.png`` and ``early_stop.png`` into ``folder``; return their paths."""
    return [
        _figure(rows, "accuracy_mean", "accuracy_std", f"{accuracy_label(rows)} (%)", title,
                folder / "accuracy.png"),
        _figure(rows, "early_stop_iteration", None, "early-stop iteration", title,
                folder / "early_stop.png"),
    ]  # fmt: skip
