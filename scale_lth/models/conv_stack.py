"""VGG-style stacks of 3x3 "same" convolutions and 2x2 max-pools, described by a plan.

A plan lists output widths of successive convolutions, with ``POOL`` marking a max-pool.
"""

from collections.abc import Sequence
from typing import Final, Literal

from torch import nn

POOL: Final = "M"
Plan = Sequence[int | Literal["M"]]


def conv_stack(plan: Plan, in_channels: int, batch_norm: bool) -> nn.Sequential:
    """Conv 3x3 (+ BatchNorm) + ReLU per width and MaxPool 2x2 per ``POOL`` in ``plan``.

    With BatchNorm the convolutions have no bias: BatchNorm's mean subtraction would cancel it.
    """
    layers: list[nn.Module] = []
    channels = in_channels
    for step in plan:
        if step == POOL:
            layers.append(nn.MaxPool2d(2))
            continue
        layers.append(nn.Conv2d(channels, step, kernel_size=3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(step))
        layers.append(nn.ReLU(inplace=True))
        channels = step
    return nn.Sequential(*layers)


def output_channels(plan: Plan) -> int:
    return [step for step in plan if step != POOL][-1]


def pooled_size(plan: Plan, image_size: int) -> int:
    """Side length of the feature map that ``plan`` makes from ``image_size`` x ``image_size``."""
    return image_size // 2 ** list(plan).count(POOL)
