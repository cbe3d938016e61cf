"""One IMP level: prune the previous level's trained weights by the config's rates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from scale_lth.pruning import Mask, magnitude_prune


def prune_level(
    weights: Mapping[str, torch.Tensor],
    names: Sequence[str],
    rates: Mapping[str, float],
    fraction: float,
    previous: Mask | None,
) -> Mask:
    """Magnitude-prune ``names``: those in ``rates`` each within itself at its own rate, the
    rest ranked together (globally) at ``fraction``; never reviving a pruned weight."""
    tensors = {name: weights[name] for name in names}
    previous = previous if previous is not None else Mask.ones_like(tensors)
    layer_wise = [name for name in names if name in rates]
    global_group = [name for name in names if name not in rates]
    kept: dict[str, torch.Tensor] = {}
    if global_group:
        kept.update(
            magnitude_prune(
                {name: tensors[name] for name in global_group},
                fraction,
                Mask({name: previous[name] for name in global_group}),
                scope="global",
            )
        )
    if layer_wise:
        kept.update(
            magnitude_prune(
                {name: tensors[name] for name in layer_wise},
                {name: rates[name] for name in layer_wise},
                Mask({name: previous[name] for name in layer_wise}),
            )
        )
    return Mask({name: kept[name] for name in names})
