"""Multiply-accumulates of a network's convolutions and linear layers, dense or under a mask.

Each weight of a convolution is used once per output position, each weight of a linear layer
once per input row: a layer's work is its weights times those uses. A pruned weight does no
work. Batch norm, activations and pooling are left out, as in "Rethinking the Value of Network
Pruning" (their cost is the same dense or sparse and small beside the layers').
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def weight_uses(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """``weight name -> uses per example`` for every Conv/Linear weight, measured by running
    ``example`` (one input, batch of 1) through ``model``."""
    uses: dict[str, int] = {}
    hooks = []
    for module_name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            name = f"{module_name}.weight" if module_name else "weight"

            def record(module, inputs, output, name=name):
                if isinstance(module, nn.Linear):
                    uses[name] = output.numel() // output.shape[-1]
                else:
                    uses[name] = output[0, 0].numel()  # output positions of one channel

            hooks.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return uses


def multiply_accumulates(
    model: nn.Module, uses: Mapping[str, int], kept: Mapping[str, int] | None = None
) -> int:
    """The layers' work per example: each weight's uses times its count (``kept[name]`` where
    given, the whole tensor elsewhere)."""
    parameters = dict(model.named_parameters())
    kept = kept or {}
    return sum(count * kept.get(name, parameters[name].numel()) for name, count in uses.items())
