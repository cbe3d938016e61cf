"""Several experiments overlaid: one table and one accuracy-vs-weights plot, each experiment
named by what its config computes differently from the others (weight vs learning-rate
rewinding, global vs layer-wise, warmup vs none: the LTH paper's deep-network figures)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from scale_lth.config import Config
from scale_lth.config.hashing import identity_keys
from scale_lth.errors import UserError
from scale_lth.report.plots import density_axis, lines
from scale_lth.report.table import Row, accuracy_label, collect
from scale_lth.results import Layout
from scale_lth.storage import atomic_write_json


@dataclass(frozen=True)
class Compared:
    """One experiment of a comparison: its folder, its identity values, its rows."""

    root: Path
    computes: dict[str, object]  # every config value that takes part in its identity
    rows: list[Row]


def legends(experiments: list[Compared]) -> list[str]:
    """What differs between the experiments' identities, one label each (``rewinding.mode=lr,
    pruning.scope=layer``); the folder name where nothing differs."""
    keys = sorted({key for e in experiments for key in e.computes})
    differing = [k for k in keys if len({repr(e.computes.get(k)) for e in experiments}) > 1]
    labels = []
    for experiment in experiments:
        parts = [f"{key}={_text(experiment.computes.get(key))}" for key in differing]
        labels.append(", ".join(parts) or experiment.root.name)
    return labels


def _text(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_text(item) for item in value) + "]"
    return "default" if value is None else str(value)


def comparison_id(experiments: list[Compared]) -> str:
    """Six hex digits naming the set of experiments (their folders' names, in order)."""
    names = "/".join(experiment.root.name for experiment in experiments)
    return hashlib.sha256(names.encode()).hexdigest()[:6]


def table(experiments: list[Compared]) -> list[dict]:
    """One row per experiment, method and level, densest first."""
    rows = []
    for label, experiment in zip(legends(experiments), experiments, strict=True):
        for row in experiment.rows:
            rows.append({"experiment": label, "folder": experiment.root.name, **asdict(row)})
    return sorted(rows, key=lambda r: (-round(r["weights_remaining"], 9), r["level"]))


def format_comparison(experiments: list[Compared]) -> str:
    """The table as text: weights remaining, experiment, method, accuracy (early-stop step)."""
    rows = table(experiments)
    width = max(len("experiment"), *(len(r["experiment"]) for r in rows))
    branch = max(len("branch"), *(len(r["branch"]) for r in rows))
    header = f"{'level':>5} {'weights':>9}  {'experiment':<{width}}  {'branch':<{branch}}  accuracy"
    lines_out = [header, "-" * (len(header) + 22)]
    for r in rows:
        accuracy = f"{100 * r['accuracy_mean']:5.1f} +- {100 * r['accuracy_std']:3.1f}%"
        lines_out.append(
            f"{r['level']:>5} {100 * r['weights_remaining']:8.3f}%  {r['experiment']:<{width}}  "
            f"{r['branch']:<{branch}}  {accuracy} ({r['early_stop_iteration']:.0f})"
        )
    every_row = [row for experiment in experiments for row in experiment.rows]
    lines_out.append(
        f"{accuracy_label(every_row)} mean +- std over replicates (early-stop iteration)"
    )
    return "\n".join(lines_out)


def write_comparison(experiments: list[Compared], folder: Path) -> list[Path]:
    """``compare.json`` and ``accuracy.png`` (every experiment's every method) in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    summary = folder / "compare.json"
    atomic_write_json(summary, table(experiments))
    figure, axes = plt.subplots(figsize=(11, 5))
    styles = ["-", "--", ":", "-."]
    colours: dict[str, str] = {}
    measured: set[float] = set()
    named = zip(legends(experiments), experiments, strict=True)
    for index, (label, experiment) in enumerate(named):
        for line in lines(experiment.rows, "accuracy_mean", "accuracy_std"):
            colour = colours.setdefault(line.label, f"C{len(colours) % 10}")
            axes.plot(line.x, line.y, styles[index % len(styles)], color=colour, marker="o",
                      markersize=3, label=f"{line.label}: {label}")  # fmt: skip
            measured.update(line.x)
    density_axis(axes, measured)
    axes.set_ylabel(f"{accuracy_label([row for e in experiments for row in e.rows])} (%)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside
    figure.tight_layout()
    plot = folder / "accuracy.png"
    figure.savefig(plot, dpi=120)
    plt.close(figure)
    return [summary, plot]


def compared(config: Config, root: Path) -> Compared:
    """The experiment of ``config`` whose results are in ``root``, with the values that take
    part in its identity; one with no finished run is refused."""
    flat = config.flat()
    computes = {key: flat.get(key) for key in sorted(identity_keys(Config))}
    rows = collect(Layout(root))
    if not rows:
        raise UserError(f"no finished runs in {root}: run `scale-lth lottery` on it first")
    return Compared(root, computes, rows)
