"""Pruning whole channels: a level removes channels of the network's channel groups
(scale_lth.pruning.channel_groups), and the result is an ordinary weight ``Mask`` in which each
removed channel's rows (in every producer) and columns (in every consumer) are zero.

Such a mask masks exactly what compaction takes out (scale_lth.pruning.compact): a removed
channel still leaves its BatchNorm's shift (or its bias) as a constant, but every weight that
reads it is zero, so the masked network computes what the compacted one does; and its count of
kept weights is the compacted network's count of convolution and linear weights. Every method
and analysis that reads masks works on it unchanged.

Scores (larger survives): ``l1``, the mean absolute weight of the channel's rows over its
group's producers (within one layer the order of Li et al. 2017's L1 norm; as a mean, it ranks
channels of layers with different fan-in together); ``bn_gamma``, the mean |gamma| of its
group's BatchNorm layers (network slimming, Liu et al. 2017). Counts are exact:
``ceil(fraction x alive channels)`` a level, ranked globally or within each group; ties go to
the earlier group, then the lower channel. No level removes a group's last channel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from scale_lth.pruning.channel_groups import ChannelGroup
from scale_lth.pruning.mask import Mask

SCORES = ("l1", "bn_gamma")


def masked_weights(groups: Sequence[ChannelGroup]) -> list[str]:
    """The weights a channel mask covers: every producer's and consumer's, each once."""
    names = [p.weight for g in groups for p in g.producers]
    names += [c.weight for g in groups for c in g.consumers]
    return list(dict.fromkeys(names))


def channel_mask(
    shapes: Mapping[str, torch.Size], groups: Sequence[ChannelGroup], kept: Sequence[torch.Tensor]
) -> Mask:
    """The weight mask keeping the channels flagged in ``kept`` (one bool tensor per group):
    zero rows for each removed channel in its producers, zero columns in its consumers."""
    tensors = {name: torch.ones(shapes[name], dtype=torch.bool) for name in masked_weights(groups)}
    for group, flags in zip(groups, kept, strict=True):
        for producer in group.producers:
            tensor = tensors[producer.weight]
            tensor &= flags.view(-1, *[1] * (tensor.dim() - 1))
        for consumer in group.consumers:
            tensor = tensors[consumer.weight]
            columns = flags.repeat_interleave(consumer.per_channel)
            tensor &= columns.view(1, -1, *[1] * (tensor.dim() - 2))
    return Mask(tensors)


def kept_channels(mask: Mask, groups: Sequence[ChannelGroup]) -> list[torch.Tensor]:
    """Each group's channels ``mask`` keeps: those with a kept entry in a producer's row."""
    return [
        torch.stack([mask[p.weight].flatten(1).any(dim=1) for p in group.producers]).any(dim=0)
        for group in groups
    ]


def channel_scores(
    weights: Mapping[str, torch.Tensor], groups: Sequence[ChannelGroup], score: str = "l1"
) -> list[torch.Tensor]:
    """Each group's channels' scores (``weights``: a state dict)."""
    if score not in SCORES:
        raise ValueError(f"channel score must be one of {', '.join(SCORES)}, got {score!r}")
    scores = []
    for group in groups:
        if score == "l1":
            rows = [weights[p.weight].detach().float().flatten(1).abs() for p in group.producers]
            scores.append(torch.cat(rows, dim=1).mean(dim=1).cpu())
        else:
            if not group.norms:
                first = group.producers[0].weight
                raise ValueError(f"bn_gamma scores need BatchNorm layers; {first} has none")
            gammas = [weights[f"{norm}.weight"].detach().float().abs() for norm in group.norms]
            scores.append(torch.stack(gammas).mean(dim=0).cpu())
    return scores


def remove_channels(
    scores: Sequence[torch.Tensor],
    alive: Sequence[torch.Tensor],
    fraction: float,
    rates: Sequence[float | None],
) -> list[torch.Tensor]:
    """The channels left once a level removes the lowest-scoring alive ones: a group with a
    rate of its own loses ``ceil(rate x its alive channels)``, the groups without one lose
    ``ceil(fraction x their alive channels)`` ranked together; never a group's last channel."""
    kept = [flags.clone() for flags in alive]
    together = [index for index, rate in enumerate(rates) if rate is None]
    for index, rate in enumerate(rates):
        if rate is not None:
            count = math.ceil(rate * int(alive[index].sum()))
            _remove_lowest(scores, kept, [index], count)
    if together:
        count = math.ceil(fraction * sum(int(alive[index].sum()) for index in together))
        _remove_lowest(scores, kept, together, count)
    return kept


def _remove_lowest(
    scores: Sequence[torch.Tensor], kept: list[torch.Tensor], groups: list[int], count: int
) -> None:
    """Remove ``count`` alive channels of ``groups`` in order of (score, group, channel),
    passing over a group's last channel."""
    candidates = sorted(
        (float(scores[group][channel]), group, channel)
        for group in groups
        for channel in kept[group].nonzero().flatten().tolist()
    )
    removed = 0
    for _, group, channel in candidates:
        if removed == count:
            break
        if int(kept[group].sum()) > 1:
            kept[group][channel] = False
            removed += 1


def random_channels(like: Sequence[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """As many channels per group as ``like`` keeps, chosen at seeded random."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for flags in like:
        order = torch.randperm(flags.numel(), generator=generator)[: int(flags.sum())]
        fresh = torch.zeros(flags.numel(), dtype=torch.bool)
        fresh[order] = True
        chosen.append(fresh)
    return chosen


def top_channels(scores: Sequence[torch.Tensor], keep: int) -> list[torch.Tensor]:
    """The ``keep`` highest-scoring channels over all groups (at least one in each)."""
    alive = [torch.ones(score.numel(), dtype=torch.bool) for score in scores]
    total = sum(score.numel() for score in scores)
    kept = [flags.clone() for flags in alive]
    _remove_lowest(scores, kept, list(range(len(scores))), total - keep)
    return kept
