"""Magnitude pruning: remove the smallest surviving weights, ranked globally or per layer."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from scale_lth.pruning.mask import Mask
from scale_lth.pruning.selection import without_smallest


def removal_count(fraction: float, remaining: int) -> int:
    """``ceil(fraction * remaining)``: what one level removes (never more than remains)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"a pruning fraction must be in [0, 1], got {fraction}")
    return min(remaining, math.ceil(fraction * remaining))


def magnitude_prune(
    weights: Mapping[str, torch.Tensor],
    fraction: float | Mapping[str, float],
    mask: Mask | None = None,
    scope: str = "global",
) -> Mask:
    """Remove ``ceil(fraction * remaining)`` of the surviving weights with the smallest magnitude.

    ``scope="global"`` ranks all tensors together (ties go to the earlier tensor, then the lower
    index); ``scope="layer"`` ranks each tensor alone. A mapping ``name -> fraction`` gives each
    tensor its own rate and implies per-layer ranking. Pruned weights are never revived.
    """
    mask = mask if mask is not None else Mask.ones_like(weights)
    if set(mask) != set(weights):
        raise ValueError("the mask and the weights must name the same tensors")
    if isinstance(fraction, Mapping):
        missing = sorted(set(weights) - set(fraction))
        if missing:
            raise ValueError(f"no pruning fraction given for {', '.join(missing)}")
    elif scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")

    names = list(weights)
    kept = mask.layer_kept()
    alive = [None if kept[name] == mask[name].numel() else mask[name] for name in names]
    if scope == "global" and not isinstance(fraction, Mapping):
        survivors = without_smallest(
            [weights[name] for name in names], alive, removal_count(fraction, sum(kept.values()))
        )
    else:
        survivors = [
            without_smallest(
                [weights[name]],
                [alive[index]],
                removal_count(
                    fraction[name] if isinstance(fraction, Mapping) else fraction, kept[name]
                ),
            )[0]
            for index, name in enumerate(names)
        ]
    return Mask(dict(zip(names, survivors, strict=True)))
