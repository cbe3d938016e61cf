"""Stability to pruning ("Stabilizing the LTH", section 2): how far a level's subnetwork,
trained in isolation, ends from where the network it was pruned from took the same weights.

For each trunk level l >= 1 of each replicate: the L2 distance and the angle between w_l (level
l's trained weights on its mask m_l) and w_s * m_l (the trained weights of the level s that m_l
was cut from, restricted to m_l: level l-1, or level 0 with one-shot pruning), over every
masked tensor taken as one vector. A small distance and angle say pruning left the surviving
weights to train to where they were going anyway (stable); a large one, that it sent them
elsewhere.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

import torch
import yaml

from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey
from scale_lth.storage import load_torch


def distance_and_angle(
    first: list[torch.Tensor], second: list[torch.Tensor]
) -> tuple[float, float]:
    """The L2 distance and the angle (degrees) between two vectors given as matching tensors;
    the angle as 2 atan2(|u - v|, |u + v|) of the unit vectors, exact for small angles too."""
    a = torch.cat([t.detach().double().flatten() for t in first])
    b = torch.cat([t.detach().double().flatten() for t in second])
    distance = float(torch.linalg.vector_norm(a - b))
    norm_a, norm_b = torch.linalg.vector_norm(a), torch.linalg.vector_norm(b)
    if norm_a == 0 or norm_b == 0:
        return distance, math.nan
    u, v = a / norm_a, b / norm_b
    angle = 2 * math.atan2(
        float(torch.linalg.vector_norm(u - v)), float(torch.linalg.vector_norm(u + v))
    )
    return distance, math.degrees(angle)


@dataclass(frozen=True)
class PruningStability:
    replicate: int
    level: int
    source: int  # the level the mask was cut from
    distance: float
    angle: float  # degrees

    def as_dict(self) -> dict:
        return asdict(self)


def pruning_method(layout: Layout) -> str:
    """The experiment's pruning method, from its saved config (iterative where not saved)."""
    path = layout.config_path
    saved = yaml.safe_load(path.read_text()) if path.is_file() else {}
    return saved.get("pruning.method", "iterative")


def stability_to_pruning(layout: Layout) -> list[PruningStability]:
    """Every trunk level whose own and whose source's trained weights are on disk."""
    method = pruning_method(layout)
    finished = set(layout.finished())
    found = []
    for key in sorted(finished, key=lambda key: (key.level, key.replicate)):
        if not key.is_ticket or key.level == 0:
            continue
        source = RunKey(key.replicate, 0 if method == "oneshot" else key.level - 1)
        if source not in finished or not layout.mask_path(key).is_file():
            continue
        mask = Mask.load(layout.mask_path(key))
        trained, before = load_torch(layout.final_path(key)), load_torch(layout.final_path(source))
        distance, angle = distance_and_angle(
            [trained[name] * keep for name, keep in mask.items()],
            [before[name] * keep for name, keep in mask.items()],
        )
        found.append(PruningStability(key.replicate, key.level, source.level, distance, angle))
    return found


def format_pruning_stability(found: list[PruningStability]) -> str:
    """One line per level: distance and angle, means over replicates (nothing before level 1
    is trained)."""
    if not found:
        return ""
    lines = ["stability to pruning (level's trained weights vs its source level's, on its mask)"]
    for level in sorted({each.level for each in found}):
        at = [each for each in found if each.level == level]
        lines.append(
            f"{level:>5}  from level {at[0].source}: L2 distance "
            f"{statistics.fmean(each.distance for each in at):.4g}, angle "
            f"{statistics.fmean(each.angle for each in at):.2f} deg"
        )
    return "\n".join(lines)


def pruning_stability_metrics(found: list[PruningStability]) -> list[tuple[str, float, int]]:
    """``(name, value, level)`` for a tracking store, the level as the step."""
    return [
        metric
        for each in found
        for metric in (
            ("pruning_stability_distance", each.distance, each.level),
            ("pruning_stability_angle", each.angle, each.level),
        )
    ]
