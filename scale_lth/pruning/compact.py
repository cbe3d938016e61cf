"""A network made physically smaller: the channels a channel mask removes, taken out.

Each ``ChannelGroup`` (scale_lth.pruning.channel_groups) keeps the channels its flags say: its
producers keep those rows of their weights and biases, its BatchNorm layers those entries (and
running statistics), its consumers those input columns (a flattened channel: its run of
features). The result is an ordinary dense network of the same classes, whose outputs equal
the masked network's, where the masked network has each removed channel silenced in every
producer and BatchNorm.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from scale_lth.pruning.channel_groups import ChannelGroup


def compact(
    model: nn.Module, groups: Sequence[ChannelGroup], kept: Sequence[torch.Tensor]
) -> nn.Module:
    """A copy of ``model`` with, for each group, only the channels flagged in ``kept`` (one
    bool tensor per group, as long as its channels; at least one channel each)."""
    if len(kept) != len(groups):
        raise ValueError(f"{len(kept)} channel flags for {len(groups)} groups")
    smaller = copy.deepcopy(model)
    modules = dict(smaller.named_modules())
    for group, flags in zip(groups, kept, strict=True):
        if flags.shape != (group.channels,) or not flags.any():
            raise ValueError(f"flags of shape {tuple(flags.shape)} for {group.channels} channels")
        rows = flags.nonzero().flatten()
        for producer in group.producers:
            layer = modules[producer.weight.removesuffix(".weight")]
            _keep_outputs(layer, rows)
        for norm in group.norms:
            _keep_features(modules[norm], rows)
        for consumer in group.consumers:
            layer = modules[consumer.weight.removesuffix(".weight")]
            columns = rows[:, None] * consumer.per_channel + torch.arange(consumer.per_channel)
            _keep_inputs(layer, columns.flatten(), len(rows))
    return smaller


def _kept(parameter: torch.Tensor, indices: torch.Tensor, dim: int) -> nn.Parameter:
    return nn.Parameter(parameter.detach().index_select(dim, indices.to(parameter.device)).clone())


def _keep_outputs(layer: nn.Conv2d | nn.Linear, rows: torch.Tensor) -> None:
    layer.weight = _kept(layer.weight, rows, 0)
    if layer.bias is not None:
        layer.bias = _kept(layer.bias, rows, 0)
    if isinstance(layer, nn.Conv2d):
        layer.out_channels = len(rows)
    else:
        layer.out_features = len(rows)


def _keep_inputs(layer: nn.Conv2d | nn.Linear, columns: torch.Tensor, channels: int) -> None:
    layer.weight = _kept(layer.weight, columns, 1)
    if isinstance(layer, nn.Conv2d):
        layer.in_channels = channels
    else:
        layer.in_features = len(columns)


def _keep_features(norm: nn.BatchNorm1d | nn.BatchNorm2d, rows: torch.Tensor) -> None:
    norm.weight = _kept(norm.weight, rows, 0)
    norm.bias = _kept(norm.bias, rows, 0)
    for name in ("running_mean", "running_var"):
        setattr(norm, name, getattr(norm, name).index_select(0, rows).clone())
    norm.num_features = len(rows)
