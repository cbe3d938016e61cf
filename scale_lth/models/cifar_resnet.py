"""ResNet-20 for CIFAR-10 (He et al. 2016, Sec. 4.2), called "Resnet-18" in the LTH paper.

A 3x3 conv (16 wide), three stages of three basic blocks (16, 32, 64 wide; the first block of
stages 2 and 3 has stride 2), global average pooling and a linear output layer. Where a block
changes shape, its shortcut is a 1x1 conv + BatchNorm. Following the LTH paper (App. I.3), only
the 3x3 conv weights are prunable: not the 1x1 shortcut convs, not the output layer.
"""

import torch
from torch import nn

from scale_lth.models.declarations import declare, layer_weights
from scale_lth.models.init import glorot_normal_init_

STAGE_WIDTHS = (16, 32, 64)
BLOCKS_PER_STAGE = 3


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """A "same"-padded convolution without bias (the BatchNorm after it has one)."""
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False
    )


class BasicBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers with a residual connection around them."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv(in_channels, out_channels, 3, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv(out_channels, out_channels, 3)
        self.bn2 = nn.BatchNorm2d(out_channels)
        reshapes = stride != 1 or in_channels != out_channels
        self.shortcut = (
            nn.Sequential(conv(in_channels, out_channels, 1, stride), nn.BatchNorm2d(out_channels))
            if reshapes
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """A 3x3 conv, stages of basic blocks as wide as ``STAGE_WIDTHS``, pooling and an fc layer."""

    def __init__(self, blocks_per_stage: int, in_channels: int, num_classes: int) -> None:
        super().__init__()
        channels = STAGE_WIDTHS[0]
        self.conv = conv(in_channels, channels, 3)
        self.bn = nn.BatchNorm2d(channels)
        blocks: list[nn.Module] = []
        for stage, width in enumerate(STAGE_WIDTHS):
            for index in range(blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(channels, width, stride))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.blocks(torch.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(self.pool(features), 1))


def is_3x3_conv(layer: nn.Module) -> bool:
    return layer.kernel_size == (3, 3)


def resnet20(*, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    """ResNet-20 with the 3x3 conv weights prunable.

    ``image_size`` is accepted so all CIFAR networks share one interface; the network pools
    globally, so it only has to be positive.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    model = CifarResNet(BLOCKS_PER_STAGE, in_channels, num_classes)
    glorot_normal_init_(model)
    prunable = layer_weights(model, layer_types=(nn.Conv2d,), keep=is_3x3_conv)
    return declare(model, prunable=prunable, output_layer="fc.weight")
