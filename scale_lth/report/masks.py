"""What pruning did, read from the masks on disk: each layer's density at every level, how much
masks overlap, and the layers or units pruning emptied.

- Overlap is the Jaccard index |A & B| / |A | B| of two masks' surviving weights, over every
  masked weight. It is measured between consecutive levels of the trunk (IMP's masks are
  nested, so this is the later density over the earlier one), between replicates at one
  level, and between the trunk and each baseline with a mask of its own at the same level
  (same density; reinit and Scratch-B use the ticket's mask itself), beside
  ``chance``: the overlap two independent random masks with the same per-layer counts have
  on average, sum(k^2 / n) / sum(2k - k^2 / n) over layers of n weights keeping k.
- Layer collapse: a layer that keeps no weight, or a unit (an output row of a weight) that
  keeps no input, cuts the network's signal; the report warns of each.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from scale_lth.methods import METHODS, TICKET
from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey, branch_order, method_run


def jaccard(first: Mask, second: Mask) -> float:
    """|A & B| / |A | B| of the surviving weights of two masks over the same tensors."""
    both = either = 0
    for name in first:
        a, b = first[name].numpy(), second[name].numpy()
        both += int(np.count_nonzero(a & b))
        either += int(np.count_nonzero(a | b))
    return both / either if either else 1.0


def chance_overlap(mask: Mask) -> float:
    """The mean Jaccard index of two independent random masks with ``mask``'s per-layer counts."""
    shared = union = 0.0
    for name, kept in mask.layer_kept().items():
        total = mask[name].numel()
        shared += kept * kept / total
        union += 2 * kept - kept * kept / total
    return shared / union if union else 1.0


def collapse(mask: Mask) -> list[str]:
    """What the mask empties: layers keeping no weight, units (output rows) keeping no input."""
    found = []
    for name, keep in mask.items():
        if not keep.any():
            found.append(f"{name} keeps no weight")
        elif keep.dim() >= 2:
            empty = int((~keep.flatten(1).any(dim=1)).sum())
            if empty:
                found.append(f"{empty} of {keep.shape[0]} units of {name} keep no input")
    return found


@dataclass(frozen=True)
class Overlap:
    kind: str  # "levels" (l-1 to l of the trunk), "replicates" or "methods" (trunk vs branch)
    level: int
    first: str  # what is compared, e.g. "level 2", "replicate 0", "main"
    second: str
    jaccard: float  # the mean over replicates (over pairs, for "replicates")
    chance: float  # the same for independent random masks with the same per-layer counts


@dataclass(frozen=True)
class Collapse:
    replicate: int
    level: int
    branch: str
    finding: str  # e.g. "12 of 300 units of hidden.0.weight keep no input"


@dataclass
class MaskAnalytics:
    # branch -> layer -> level -> density, the mean over replicates
    densities: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    overlaps: list[Overlap] = field(default_factory=list)
    collapse: list[Collapse] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "densities": self.densities,
            "overlaps": [asdict(overlap) for overlap in self.overlaps],
            "collapse": [asdict(found) for found in self.collapse],
        }


def _masks(layout: Layout, replicates: set[int] | None) -> dict[RunKey, Mask]:
    return {
        key: Mask.load(layout.mask_path(key))
        for key in layout.finished()
        if layout.mask_path(key).is_file() and (replicates is None or key.replicate in replicates)
    }


def _shares_the_tickets_mask(branch: str) -> bool:
    """The trunk, and methods whose runs use the ticket's own mask (an overlap of 1 by
    definition)."""
    method = method_run(branch).method
    return method == TICKET or (method in METHODS and METHODS[method].start.mask == "ticket")


def _mean_overlap(pairs: list[tuple[Mask, Mask]]) -> tuple[float, float]:
    return (
        statistics.fmean(jaccard(a, b) for a, b in pairs),
        statistics.fmean(chance_overlap(a) for a, _ in pairs),
    )


def analyse(layout: Layout, replicates: set[int] | None = None) -> MaskAnalytics:
    """The analytics of every finished run's mask under ``layout`` (of ``replicates`` only, if
    given)."""
    masks = _masks(layout, replicates)
    analytics = MaskAnalytics()
    by_level_branch: dict[tuple[int, str], dict[int, Mask]] = {}
    for key, mask in sorted(masks.items(), key=lambda item: (item[0].level, item[0].replicate)):
        by_level_branch.setdefault((key.level, key.branch), {})[key.replicate] = mask
        analytics.collapse.extend(
            Collapse(key.replicate, key.level, key.branch, finding) for finding in collapse(mask)
        )
    for (level, branch), by_replicate in sorted(
        by_level_branch.items(), key=lambda item: (branch_order(item[0][1]), item[0][0])
    ):
        layers = analytics.densities.setdefault(branch, {})
        for name in next(iter(by_replicate.values())):
            layers.setdefault(name, {})[level] = statistics.fmean(
                mask.layer_densities()[name] for mask in by_replicate.values()
            )
    trunk = {level: kept for (level, branch), kept in by_level_branch.items() if branch == TICKET}
    for level, by_replicate in sorted(trunk.items()):
        earlier = trunk.get(level - 1, {})
        pairs = [(earlier[r], by_replicate[r]) for r in by_replicate if r in earlier]
        if pairs:
            analytics.overlaps.append(
                Overlap(
                    "levels", level, f"level {level - 1}", f"level {level}", *_mean_overlap(pairs)
                )
            )
        pairs = [
            (by_replicate[a], by_replicate[b])
            for a, b in itertools.combinations(sorted(by_replicate), 2)
        ]
        if pairs:
            analytics.overlaps.append(
                Overlap("replicates", level, "replicate", "replicate", *_mean_overlap(pairs))
            )
        for (other_level, branch), others in sorted(by_level_branch.items()):
            if other_level != level or _shares_the_tickets_mask(branch):
                continue
            pairs = [(by_replicate[r], others[r]) for r in others if r in by_replicate]
            if pairs:
                analytics.overlaps.append(
                    Overlap("methods", level, TICKET, branch, *_mean_overlap(pairs))
                )
    return analytics


def format_overlaps(analytics: MaskAnalytics) -> str:
    """Levels down, overlaps across: the Jaccard index, chance in brackets; then the collapse
    warnings. Nothing when no two masks were compared."""
    if not analytics.overlaps:
        return "\n".join(collapse_warnings(analytics))
    kinds = ("levels", "replicates", "methods")
    ordered = sorted(
        analytics.overlaps, key=lambda o: (kinds.index(o.kind), branch_order(o.second))
    )
    columns = list(dict.fromkeys(_label(overlap) for overlap in ordered))
    cells = {(o.level, _label(o)): f"{o.jaccard:.3f} ({o.chance:.3f})" for o in analytics.overlaps}
    width = max([15, *(len(column) for column in columns)])
    header = f"{'level':>5}  " + "  ".join(f"{column:>{width}}" for column in columns)
    lines = [
        "mask overlap (Jaccard index of the kept weights; two independent random masks with the "
        "same per-layer counts in brackets)",
        header,
        "-" * len(header),
    ]
    for level in sorted({overlap.level for overlap in analytics.overlaps}):
        row = [f"{cells.get((level, column), ''):>{width}}" for column in columns]
        lines.append(f"{level:>5}  " + "  ".join(row))
    return "\n".join(lines + collapse_warnings(analytics))


def collapse_warnings(analytics: MaskAnalytics) -> list[str]:
    """One line per branch: the first level where its masks empty a layer or a unit."""
    first: dict[str, Collapse] = {}
    for found in sorted(analytics.collapse, key=lambda found: (found.level, found.replicate)):
        first.setdefault(found.branch, found)
    return [
        f"warning: layer collapse in {branch} from level {found.level} on (replicate "
        f"{found.replicate}: {found.finding}); every finding in report/masks.json"
        for branch, found in sorted(first.items(), key=lambda item: branch_order(item[0]))
    ]


def _label(overlap: Overlap) -> str:
    if overlap.kind == "levels":
        return "previous level"
    if overlap.kind == "replicates":
        return "replicates"
    return overlap.second


def plot_densities(analytics: MaskAnalytics, folder: Path, title: str) -> Path | None:
    """The trunk's per-layer density (layers down, levels across), as ``layer_density.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = analytics.densities.get(TICKET)
    if not layers:
        return None
    names = list(layers)
    levels = sorted({level for by_level in layers.values() for level in by_level})
    grid = np.array([[100 * layers[name].get(level, np.nan) for level in levels] for name in names])
    figure, axes = plt.subplots(figsize=(max(6.0, 0.45 * len(levels) + 3), 0.4 * len(names) + 2))
    image = axes.imshow(grid, aspect="auto", cmap="viridis", norm=matplotlib.colors.LogNorm())
    axes.set_xticks(range(len(levels)), [str(level) for level in levels])
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("level")
    axes.set_title(f"{title}: % of each layer's weights remaining (trunk)")
    figure.colorbar(image, ax=axes, label="% remaining")
    figure.tight_layout()
    path = folder / "layer_density.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def mask_metrics(analytics: MaskAnalytics) -> list[tuple[str, float, int]]:
    """``(name, value, level)`` for a tracking store, the level as the step: the trunk's
    overlap with its previous level, each baseline's overlap with the trunk, and the trunk's
    per-layer densities (``layer_density/<parameter>``)."""
    metrics = []
    for overlap in analytics.overlaps:
        if overlap.kind == "levels":
            metrics.append(("mask_jaccard_previous_level", overlap.jaccard, overlap.level))
        elif overlap.kind == "methods":
            metrics.append((f"mask_jaccard_{overlap.second}", overlap.jaccard, overlap.level))
    for layer, by_level in analytics.densities.get(TICKET, {}).items():
        metrics.extend(
            (f"layer_density/{layer}", density, level) for level, density in by_level.items()
        )
    return metrics
