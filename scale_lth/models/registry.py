"""Model names and how to build them, with their options checked before building."""

import inspect
from collections.abc import Callable
from functools import partial

from torch import nn

from scale_lth.models.cifar_resnet import resnet20
from scale_lth.models.conv import CONV2_PLAN, CONV4_PLAN, CONV6_PLAN, conv_net
from scale_lth.models.imagenet_resnet import resnet18, resnet50
from scale_lth.models.lenet import lenet300
from scale_lth.models.vgg import vgg19

# Each builder takes keyword-only options; its ``num_classes`` default is the paper's.
BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "lenet300": lenet300,
    "conv2": partial(conv_net, CONV2_PLAN),
    "conv4": partial(conv_net, CONV4_PLAN),
    "conv6": partial(conv_net, CONV6_PLAN),
    "resnet20": resnet20,
    "vgg19": vgg19,
    "resnet18": resnet18,
    "resnet50": resnet50,
}


def names() -> list[str]:
    return sorted(BUILDERS)


def options(name: str) -> list[str]:
    """The options ``build`` accepts for ``name`` besides ``num_classes``."""
    parameters = inspect.signature(builder(name)).parameters
    return sorted(
        option
        for option, parameter in parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and option != "num_classes"
    )


def builder(name: str) -> Callable[..., nn.Module]:
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(names())}")
    return BUILDERS[name]


def build(name: str, num_classes: int | None = None, **model_options: object) -> nn.Module:
    """Build model ``name``, freshly initialised; ``num_classes=None`` means the paper's."""
    unknown = sorted(set(model_options) - set(options(name)))
    if unknown:
        accepted = ", ".join(options(name)) or "none"
        raise TypeError(
            f"{name} got unknown option(s) {', '.join(unknown)}; it accepts: {accepted}"
        )
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        model_options["num_classes"] = num_classes
    return builder(name)(**model_options)
