"""Conv-2, Conv-4 and Conv-6: the small VGG-like CIFAR-10 networks of the LTH paper (Fig. 2).

Each is pairs of 3x3 convolutions (64, then 128, then 256 wide) each pair followed by a 2x2
max-pool, then fully-connected layers 256, 256, ``num_classes``.

The paper's Fig. 2 prints 1.7M weights for Conv-6, which is inconsistent with its own stated
widths: they give 2,261,184 (its 1.1M conv weights do match). We follow the widths.
"""

import torch
from torch import nn

from scale_lth.models.conv_stack import POOL, Plan, conv_stack, output_channels, pooled_size
from scale_lth.models.declarations import declare, layer_weights
from scale_lth.models.fully_connected import FullyConnected
from scale_lth.models.init import glorot_normal_init_

CONV2_PLAN: Plan = (64, 64, POOL)
CONV4_PLAN: Plan = (*CONV2_PLAN, 128, 128, POOL)
CONV6_PLAN: Plan = (*CONV4_PLAN, 256, 256, POOL)


class ConvNet(nn.Module):
    """Convolutions and pools from ``plan`` (no BatchNorm), then FC 256-256-``num_classes``."""

    def __init__(
        self, plan: Plan, in_channels: int, image_size: int, num_classes: int, dropout: float
    ) -> None:
        super().__init__()
        side = pooled_size(plan, image_size)
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for {plan}")
        self.features = conv_stack(plan, in_channels, batch_norm=False)
        self.classifier = FullyConnected(
            output_channels(plan) * side * side, (256, 256), num_classes, dropout
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def conv_net(
    plan: Plan,
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    dropout: float = 0.0,
) -> nn.Module:
    """A Conv-N network; every conv and linear weight, output layer included, is prunable.

    ``dropout`` (the LTH paper trains with 0.5 in some experiments) follows each hidden
    fully-connected layer's ReLU; the paper does not say where it goes.
    """
    model = ConvNet(plan, in_channels, image_size, num_classes, dropout)
    glorot_normal_init_(model)
    return declare(model, prunable=layer_weights(model), output_layer="classifier.output.weight")
