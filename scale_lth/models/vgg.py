"""VGG-19 for CIFAR-10 as in the LTH paper and OpenLTH.

Sixteen 3x3 conv + BatchNorm + ReLU layers with four 2x2 max-pools, global average pooling
(which on 32x32 inputs is OpenLTH's final 2x2 average pool) and a linear output layer. Following
the LTH paper, the conv weights are prunable and the output layer is not.
"""

import torch
from torch import nn

from scale_lth.models.conv_stack import POOL, Plan, conv_stack, output_channels, pooled_size
from scale_lth.models.declarations import declare, layer_weights
from scale_lth.models.init import glorot_normal_init_

VGG19_PLAN: Plan = (
    *(64, 64, POOL),
    *(128, 128, POOL),
    *(256,) * 4,
    POOL,
    *(512,) * 4,
    POOL,
    *(512,) * 4,
)


class VGG(nn.Module):
    def __init__(self, plan: Plan, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = conv_stack(plan, in_channels, batch_norm=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(output_channels(plan), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def vgg19(*, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    """VGG-19 with the conv weights prunable; ``image_size`` must survive the four max-pools."""
    if pooled_size(VGG19_PLAN, image_size) < 1:
        raise ValueError(f"vgg19 needs image_size >= 16, got {image_size}")
    model = VGG(VGG19_PLAN, in_channels, num_classes)
    glorot_normal_init_(model)
    prunable = layer_weights(model, layer_types=(nn.Conv2d,))
    return declare(model, prunable=prunable, output_layer="fc.weight")
