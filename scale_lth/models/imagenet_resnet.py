"""torchvision's ImageNet ResNet-18 and ResNet-50, never with pretrained weights.

They keep torchvision's initialisation. As in Frankle et al. (2019), "Stabilizing the Lottery
Ticket Hypothesis" (a.k.a. "The LTH at Scale"), and OpenLTH, every conv and fc weight is prunable.
"""

from torch import nn

from scale_lth.models.declarations import declare, layer_weights


def torchvision_resnet(name: str, num_classes: int) -> nn.Module:
    """torchvision's ``name`` (imported here: importing torchvision takes about a second, which
    every process of a command would pay whatever network it trains)."""
    import torchvision.models

    model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes)
    return declare(model, prunable=layer_weights(model), output_layer="fc.weight")


def resnet18(*, num_classes: int = 1000) -> nn.Module:
    return torchvision_resnet("resnet18", num_classes)


def resnet50(*, num_classes: int = 1000) -> nn.Module:
    return torchvision_resnet("resnet50", num_classes)
