"""The papers' figures: accuracy and early-stop iteration against % weights remaining
(log scale, decreasing left to right), one line per branch with a +-std band."""

from __future__ import annotations

from pathlib import Path

from scale_lth.report.table import BRANCH_ORDER, Row

LABELS = {
    "main": "winning ticket (IMP)",
    "reinit": "random reinit",
    "random_prune": "random pruning",
    "snip": "SNIP",
}


def _figure(rows: list[Row], value: str, spread: str | None, ylabel: str, title: str, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axes = plt.subplots(figsize=(7, 4.5))
    branches = sorted({r.branch for r in rows}, key=lambda b: (BRANCH_ORDER + (b,)).index(b))
    dense = [r for r in rows if r.branch == "main" and r.level == 0]
    for branch in branches:
        line = sorted(
            [r for r in rows if r.branch == branch] + (dense if branch != "main" else []),
            key=lambda r: -r.weights_remaining,
        )
        x = [100 * r.weights_remaining for r in line]
        y = [getattr(r, value) * (100 if "accuracy" in value else 1) for r in line]
        axes.plot(x, y, marker="o", markersize=3, label=LABELS.get(branch, branch))
        if spread is not None:
            s = [100 * getattr(r, spread) for r in line]
            axes.fill_between(x, [a - b for a, b in zip(y, s, strict=True)],
                              [a + b for a, b in zip(y, s, strict=True)], alpha=0.2)  # fmt: skip
    axes.set_xscale("log")
    axes.invert_xaxis()
    axes.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xlabel("% of weights remaining")
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
        _figure(rows, "accuracy_mean", "accuracy_std", "final test accuracy (%)", title,
                folder / "accuracy.png"),
        _figure(rows, "early_stop_iteration", None, "early-stop iteration", title,
                folder / "early_stop.png"),
    ]  # fmt: skip
