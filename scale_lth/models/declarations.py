"""What a model declares about itself for pruning: its prunable weights and its output layer.

The declaration is stored as plain attributes on the model instance at build time, so it travels
with the model through ``copy.deepcopy``, pickling (e.g. to Ray workers) and ``load_state_dict``.
Parameter names are relative to the unwrapped model, as in its ``named_parameters()``.
"""

from collections.abc import Callable, Iterable
from typing import TypeVar

from torch import nn

PRUNABLE_ATTRIBUTE = "prunable_parameter_names"
OUTPUT_LAYER_ATTRIBUTE = "output_layer_parameter_name"

ModelT = TypeVar("ModelT", bound=nn.Module)


def declare(model: ModelT, prunable: Iterable[str], output_layer: str) -> ModelT:
    """Attach the prunable parameter names and the output layer's weight name to ``model``."""
    parameter_names = [name for name, _ in model.named_parameters()]
    wanted = set(prunable)
    unknown = sorted((wanted | {output_layer}) - set(parameter_names))
    if unknown:
        raise ValueError(f"{type(model).__name__} has no parameters named {', '.join(unknown)}")
    setattr(model, PRUNABLE_ATTRIBUTE, tuple(name for name in parameter_names if name in wanted))
    setattr(model, OUTPUT_LAYER_ATTRIBUTE, output_layer)
    return model


def layer_weights(
    model: nn.Module,
    layer_types: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear),
    keep: Callable[[nn.Module], bool] = lambda layer: True,
) -> list[str]:
    """Names of the ``.weight`` of every layer of ``layer_types`` accepted by ``keep``."""
    return [
        f"{name}.weight"
        for name, layer in model.named_modules()
        if isinstance(layer, layer_types) and keep(layer)
    ]


def unwrap(model: nn.Module) -> nn.Module:
    """The declaring model inside DistributedDataParallel (``.module``) or torch.compile."""
    # vars(), not hasattr(): torch.compile's wrapper forwards attribute lookups to the inner model.
    while PRUNABLE_ATTRIBUTE not in vars(model):
        inner = getattr(model, "_orig_mod", getattr(model, "module", None))
        if not isinstance(inner, nn.Module):
            raise TypeError(
                f"{type(model).__name__} declares no prunable parameters; "
                "build it with scale_lth.models.build"
            )
        model = inner
    return model


def prunable(model: nn.Module) -> list[str]:
    """Default prunable parameter names, in ``named_parameters()`` order of the unwrapped model."""
    return list(getattr(unwrap(model), PRUNABLE_ATTRIBUTE))


def output_layer(model: nn.Module) -> str:
    """Name of the output layer's weight (the LTH prunes it at its own rate)."""
    return getattr(unwrap(model), OUTPUT_LAYER_ATTRIBUTE)
