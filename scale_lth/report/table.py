"""One row per level and branch: weights remaining, accuracy mean +- std over replicates,
early-stopping iteration (and what its network costs, from scale_lth.report.cost); the grid of
levels and branches their tables share."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass

from scale_lth.results import Layout, branch_label, branch_order


@dataclass(frozen=True)
class Row:
    level: int
    branch: str
    weights_remaining: float  # fraction of the prunable weights
    accuracy_mean: float  # final test accuracy (validation where there is no test split)
    accuracy_std: float  # sample std over replicates (0 with one replicate)
    early_stop_iteration: float  # mean over replicates
    early_stop_accuracy_mean: float
    replicates: int
    accuracy_split: str  # the split behind the accuracies ("val" where there is no test split)
    early_stop_split: str = "val"  # the split whose loss chose the early-stop iteration
    # What the network costs as it would run, means over the replicates in report/cost.json
    # (None where it holds none; scale_lth.report.cost)
    macs: float | None = None  # multiply-accumulates per example
    parameters: float | None = None
    latency_ms: float | None = None  # of a batch of cost.json's first batch size

    def as_dict(self) -> dict:
        return asdict(self)


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _accuracy_split(run: dict) -> str:
    """Recorded by the run, or (results written before it was) read off its history."""
    if "accuracy_split" in run:
        return run["accuracy_split"]
    return "test" if "test_accuracy" in run["history"][-1] else "val"


def accuracy_label(rows: list[Row]) -> str:
    """What the accuracies are, naming their split."""
    splits = {row.accuracy_split for row in rows}
    if splits == {"val"}:
        return "final val accuracy (the data has no test split: val doubles as test)"
    if splits == {"test"}:
        return "final test accuracy"
    return "final test accuracy (val where the data has no test split)"


def curve_metrics(layout: Layout, replicate: int) -> list[tuple[str, float, int]]:
    """One replicate's curve for a tracking store's charts, the level as the step: per method,
    the final and early-stop accuracy and the fraction of weights remaining
    (``final_accuracy/<branch>``, ``early_stop_accuracy/<branch>``, ``density/<branch>``); the
    trunk's level 0 is every method's dense start."""
    metrics = []
    for key in layout.finished():
        if key.replicate != replicate:
            continue
        run = layout.read_metrics(key)
        metrics += [
            (f"{name}/{key.branch}", run[name], key.level)
            for name in ("final_accuracy", "early_stop_accuracy", "density")
        ]
    return metrics


def summary_metrics(rows: list[Row]) -> list[tuple[str, float, int]]:
    """The report's table for a tracking store, the level as the step: each method's accuracy
    mean and std over replicates and its weights remaining."""
    return [
        metric
        for row in rows
        for metric in (
            (f"accuracy_mean/{row.branch}", row.accuracy_mean, row.level),
            (f"accuracy_std/{row.branch}", row.accuracy_std, row.level),
            (f"early_stop_accuracy_mean/{row.branch}", row.early_stop_accuracy_mean, row.level),
            (f"weights_remaining/{row.branch}", row.weights_remaining, row.level),
        )
    ]


BASIS_POINTS = 10_000  # the steps of the by-weights-remaining curve: 10000 is the dense network


def method_curves(rows: list[Row]) -> dict[str, list[tuple[str, float, int]]]:
    """Each method's curve for a tracking store, a run's worth per method: over replicates, the
    accuracy's mean (``test_accuracy``) and std, the early-stop iteration and the weights
    remaining, the level as the step; and the mean accuracy again with the weights remaining
    in basis points as the step (``test_accuracy_by_weights_remaining_bp``), so a chart of
    several methods' runs puts sparsity on its x axis."""
    curves: dict[str, list[tuple[str, float, int]]] = {}
    for row in rows:
        curves.setdefault(row.branch, []).extend(
            [
                ("test_accuracy", row.accuracy_mean, row.level),
                ("test_accuracy_std", row.accuracy_std, row.level),
                ("early_stop_iteration", row.early_stop_iteration, row.level),
                ("weights_remaining", row.weights_remaining, row.level),
                (
                    "test_accuracy_by_weights_remaining_bp",
                    row.accuracy_mean,
                    round(row.weights_remaining * BASIS_POINTS),
                ),
            ]
        )
    return curves


def collect(layout: Layout) -> list[Row]:
    """Every level and branch with at least one finished replicate, in level order."""
    groups: dict[tuple[int, str], list[dict]] = {}
    for key in layout.finished():
        groups.setdefault((key.level, key.branch), []).append(layout.read_metrics(key))
    rows = []
    for (level, branch), runs in sorted(
        groups.items(), key=lambda item: (item[0][0], branch_order(item[0][1]))
    ):
        accuracies = [run["final_accuracy"] for run in runs]
        rows.append(
            Row(
                level=level,
                branch=branch,
                weights_remaining=statistics.fmean(run["density"] for run in runs),
                accuracy_mean=statistics.fmean(accuracies),
                accuracy_std=_spread(accuracies),
                early_stop_iteration=statistics.fmean(run["early_stop_iteration"] for run in runs),
                early_stop_accuracy_mean=statistics.fmean(
                    run["early_stop_accuracy"] for run in runs
                ),
                replicates=len(runs),
                accuracy_split=_accuracy_split(runs[0]),
            )
        )
    return rows


def grid(rows: list[Row], cell: Callable[[Row], str], width: int) -> list[str]:
    """Levels down, branches across, each level's weights remaining first: a header, a rule and
    a line per level, each cell ``cell(row)`` right-aligned in ``width`` characters."""
    branches = sorted({row.branch for row in rows}, key=branch_order)
    cells = {(row.level, row.branch): row for row in rows}
    levels = sorted({row.level for row in rows})
    header = f"{'level':>5} {'weights':>9}  " + "  ".join(f"{b:>{width}}" for b in branches)
    lines = [header, "-" * len(header)]
    for level in levels:
        first = next(cells[(level, b)] for b in branches if (level, b) in cells)
        parts = []
        for branch in branches:
            row = cells.get((level, branch))
            parts.append(f"{cell(row) if row is not None else '':>{width}}")
        lines.append(f"{level:>5} {100 * first.weights_remaining:8.3f}%  " + "  ".join(parts))
    return lines


def _accuracy_cell(row: Row) -> str:
    return (
        f"{100 * row.accuracy_mean:5.1f} +- {100 * row.accuracy_std:3.1f}% "
        f"({row.early_stop_iteration:6.0f})"
    )


def format_table(rows: list[Row]) -> str:
    """Levels down, branches across: accuracy mean +- std (early-stop iteration)."""
    branches = sorted({row.branch for row in rows}, key=branch_order)
    lines = grid(rows, _accuracy_cell, 24)
    lines.append(
        f"cells: {accuracy_label(rows)} mean +- std over replicates (early-stop iteration, "
        "chosen on val)"
    )
    lines.append("; ".join(f"{branch}: {branch_label(branch)}" for branch in branches))
    return "\n".join(lines)
