"""torchvision's ImageNet ResNet-18 and ResNet-50, never with pretrained weights.

They keep torchvision's initialisation. As in Frankle et al. (2019), "Stabilizing the Lottery
Ticket Hypothesis" (a.k.a. "The LTH at Scale"), and OpenLTH, every conv and fc weight is prunable.
"""

from collections.abc import Callable

import torchvision
from torch import nn

from scale_lth.models.declarations import declare, layer_weights


def torchvision_resnet(constructor: Callable[..., nn.Module], num_classes: int) -> nn.Module:
    model = constructor(weights=None, num_classes=num_classes)
    return declare(model, prunable=layer_weights(model), output_layer="fc.weight")


def resnet18(*, num_classes: int = 1000) -> nn.Module:
    return torchvision_resnet(torchvision.models.resnet18, num_classes)


def resnet50(*, num_classes: int = 1000) -> nn.Module:
    return torchvision_resnet(torchvision.models.resnet50, num_classes)
