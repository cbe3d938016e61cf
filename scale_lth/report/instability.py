"""Instability to SGD noise ("Linear Mode Connectivity and the LTH"; "Stabilizing the LTH",
section 2), read from the instability analysis's path measurements (scale_lth.lottery
.instability): for each start (the dense network from step k, or a level's subnetwork from its
rewind point), the error barrier on the straight path between two copies trained from it under
different SGD noise, on every split measured; and the L2 distance and angle between the two
copies' trained weights (the masked tensors, or the dense network's weight matrices and
kernels). With ``rewinding.step: auto``, the rewind point each replicate chose from them.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from scale_lth.pruning import Mask
from scale_lth.report.pruning_stability import distance_and_angle
from scale_lth.results import Layout, RunKey, copies_of
from scale_lth.storage import load_json, load_torch


@dataclass(frozen=True)
class Instability:
    replicate: int
    level: int
    at: str  # where the copies started: a step (level 0) or ``rewind``
    step: int  # that start in steps
    instability: dict[str, float]  # split -> max error on the path - mean of the ends' errors
    errors: dict[str, list[float]]  # split -> error at each point
    alphas: list[float]  # each point's weight of copy a
    distance: float  # L2, between the copies' trained weights
    angle: float  # degrees
    examples: dict[str, int] | None  # split -> examples evaluated (None: measured before counts)

    def as_dict(self) -> dict:
        return asdict(self)


def copies_distance(layout: Layout, key: RunKey) -> tuple[float, float]:
    """Distance and angle between the two copies of the path measurement ``key``."""
    first, second = copies_of(key)
    a, b = load_torch(layout.final_path(first)), load_torch(layout.final_path(second))
    mask_path = layout.mask_path(first)
    if mask_path.is_file():
        mask = Mask.load(mask_path)
        return distance_and_angle(
            [a[name] * keep for name, keep in mask.items()],
            [b[name] * keep for name, keep in mask.items()],
        )
    names = [name for name, t in a.items() if t.is_floating_point() and t.dim() > 1]
    return distance_and_angle([a[name] for name in names], [b[name] for name in names])


def measured(layout: Layout) -> list[Instability]:
    """Every finished path measurement, by level, then step, then replicate."""
    found = []
    for key in layout.finished_instability():
        if not key.measures_path:
            continue
        metrics = layout.read_metrics(key)
        distance, angle = copies_distance(layout, key)
        found.append(
            Instability(
                key.replicate,
                key.level,
                metrics["at"],
                metrics["step"],
                metrics["instability"],
                metrics["errors"],
                metrics["alphas"],
                distance,
                angle,
                metrics.get("examples"),
            )
        )
    return sorted(found, key=lambda each: (each.level, each.step, each.replicate))


def rewind_choices(layout: Layout) -> dict[int, dict]:
    """``rewinding.step: auto``'s choice of each replicate that made one."""
    return {
        replicate: load_json(layout.rewind_choice_path(replicate))
        for replicate in sorted({key.replicate for key in layout.finished()})
        if layout.rewind_choice_path(replicate).is_file()
    }


def _groups(found: list[Instability]) -> dict[tuple[int, str], list[Instability]]:
    groups: dict[tuple[int, str], list[Instability]] = {}
    for each in found:
        groups.setdefault((each.level, each.at), []).append(each)
    return groups


def format_instability(found: list[Instability], choices: dict[int, dict]) -> str:
    """One line per start: the instability on each split, the copies' distance and angle
    (means over replicates); then each replicate's automatic rewind point."""
    if not found and not choices:
        return ""
    splits = sorted({split for each in found for split in each.instability})
    lines = [
        "instability (largest error on the path between two copies minus their mean, mean over "
        "replicates)",
        f"{'level':>5} {'from':>16}  " + "".join(f"{split:>8}" for split in splits)
        + f"  {'copies: L2 distance, angle':>28}",
    ]  # fmt: skip
    for (level, at), group in _groups(found).items():
        start = f"{at} ({group[0].step} it)" if level == 0 else f"rewind ({group[0].step} it)"
        cells = "".join(
            f"{100 * statistics.fmean(each.instability[split] for each in group):>7.2f}%"
            for split in splits
        )
        distance = statistics.fmean(each.distance for each in group)
        angle = statistics.fmean(each.angle for each in group)
        lines.append(f"{level:>5} {start:>16}  {cells}  {distance:>17.4g}, {angle:6.2f} deg")
    counted = dict.fromkeys(tuple(each.examples.items()) for each in found if each.examples)
    if counted:
        on = "; ".join(
            ", ".join(f"{count:,} {split}" for split, count in examples) for examples in counted
        )
        lines.append(f"evaluated on {on} examples (seeded subsamples: instability.*_examples)")
    for replicate, choice in choices.items():
        verdict = (
            f"the earliest below {100 * choice['threshold']:.1f}%"
            if choice["stable"]
            else f"none is below {100 * choice['threshold']:.1f}%: the latest, so no rewind "
            "point was stable"
        )
        lines.append(
            f"rewinding.step auto, replicate {replicate}: step {choice['step']} "
            f"({choice['at']}; {verdict} on {choice['split']})"
        )
    return "\n".join(lines)


def instability_metrics(
    found: list[Instability], choice: dict | None
) -> list[tuple[str, float, int]]:
    """``(name, value, step)`` for a tracking store: the dense network's by its start step,
    a level's (``level_`` names) by its level; the automatic choice's step."""
    metrics = []
    for each in found:
        prefix, step = ("", each.step) if each.level == 0 else ("level_", each.level)
        metrics += [(f"{prefix}instability_{s}", v, step) for s, v in each.instability.items()]
        metrics += [
            (f"{prefix}copies_distance", each.distance, step),
            (f"{prefix}copies_angle", each.angle, step),
        ]
    if choice is not None:
        metrics.append(("rewind_step_chosen", float(choice["step"]), 0))
    return metrics


def plot_instability(found: list[Instability], folder: Path, title: str) -> Path | None:
    """``instability.png``: the dense network's instability against the start step k and,
    where measured, each level's against the level; one line per split."""
    if not found:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    dense = [each for each in found if each.level == 0]
    levels = [each for each in found if each.level > 0]
    panels = [(group, x) for group, x in ((dense, "step"), (levels, "level")) if group]
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for axis, (group, x) in zip(axes[0], panels, strict=True):
        for split in sorted({s for each in group for s in each.instability}):
            points: dict[int, list[float]] = {}
            for each in group:
                points.setdefault(getattr(each, x), []).append(100 * each.instability[split])
            xs = sorted(points)
            axis.plot(xs, [statistics.fmean(points[v]) for v in xs], marker="o", label=split)
        axis.set_xlabel("rewind step k (iterations)" if x == "step" else "pruning level")
        axis.set_ylabel("instability (%)")
        axis.set_title("dense network from step k" if x == "step" else "IMP subnetworks")
        axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    path = folder / "instability.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
