"""The config's network, shaped for its data, and the weights its pruning acts on."""

from __future__ import annotations

import fnmatch
from typing import Any

import torch
from torch import nn

from scale_lth import models
from scale_lth.config import Config, ConfigError
from scale_lth.data import DataInfo
from scale_lth.pruning.channel_groups import ChannelGroup, channel_groups
from scale_lth.pruning.channels import masked_weights
from scale_lth.pruning.magnitude import removal_count


def check_model(config: Config) -> None:
    """The model exists and takes the options the config gives it."""
    name = config.model.name
    if name not in models.names():
        raise ConfigError(
            f"model.name '{name}' is no model here; known: {', '.join(models.names())}"
        )
    if config.model.dropout and "dropout" not in models.options(name):
        raise ConfigError(
            f"model.dropout: {name} has no dropout (only conv2/4/6 do); remove model.dropout"
        )


def build_network(config: Config, info: DataInfo, seed: int) -> nn.Module:
    """``config.model.name`` for ``info``'s images and classes, initialised from ``seed``."""
    torch.manual_seed(seed)
    return _built(config, info)


def loaded_network(config: Config, info: DataInfo, weights: dict[str, torch.Tensor]) -> nn.Module:
    """The network holding ``weights``, built without drawing the initial values they replace:
    on the meta device, then given memory on the CPU and loaded (every parameter and buffer is
    in ``weights``: loading is strict, and a buffer kept out of the state dict is refused)."""
    with torch.device("meta"):
        model = _built(config, info)
    unsaved = {name for name, _ in model.named_buffers()} - set(model.state_dict())
    if unsaved:
        raise TypeError(f"{config.model.name} has buffers no weights file holds: {unsaved}")
    model = model.to_empty(device="cpu")
    model.load_state_dict(weights)
    return model


def _built(config: Config, info: DataInfo) -> nn.Module:
    return models.build(config.model.name, **network_arguments(config, info))


def network_arguments(config: Config, info: DataInfo) -> dict[str, Any]:
    """What ``models.build`` is given besides the name: the classes and the options the model
    takes for ``info``'s images."""
    accepted = models.options(config.model.name)
    options: dict[str, object] = {}
    shape = info.shape
    if "input_size" in accepted:
        if shape is None:
            raise ConfigError(f"{config.model.name} needs images of one size; {info.source} varies")
        options["input_size"] = shape[0] * shape[1] * shape[2]
    if "in_channels" in accepted:
        options["in_channels"] = info.channels
    if "image_size" in accepted:
        options["image_size"] = config.data.resolution or (shape[1] if shape else 224)
    if config.model.dropout:
        if "dropout" not in accepted:
            raise ConfigError(
                f"model.dropout: {config.model.name} has no dropout (only conv2/4/6 do); "
                "remove model.dropout"
            )
        options["dropout"] = config.model.dropout
    return {"num_classes": config.model.num_classes or info.num_classes, **options}


def pruned_names(config: Config, model: nn.Module) -> list[str]:
    """The weights its masks cover: the model's prunable weights less those matching
    ``pruning.ignore``; at channel granularity, every weight of the pruned channel groups."""
    if config.pruning.granularity == "channel":
        return masked_weights(pruned_groups(config, model))
    return [name for name in models.prunable(model) if not _ignored(config, name)]


def _ignored(config: Config, name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in config.pruning.ignore)


def pruned_groups(config: Config, model: nn.Module) -> list[ChannelGroup]:
    """The model's channel groups, less those with a producer matching ``pruning.ignore``."""
    groups = channel_groups(models.unwrap(model))
    return [g for g in groups if not any(_ignored(config, p.weight) for p in g.producers)]


def group_rates(config: Config, groups: list[ChannelGroup]) -> list[float | None]:
    """Each channel group's own rate: the first ``pruning.layer_fractions`` pattern matching
    one of its producers, else ``pruning.fraction`` under ``scope: layer``; None: ranked with
    the other groups."""
    pruning = config.pruning
    rates: list[float | None] = []
    for group in groups:
        producers = [producer.weight for producer in group.producers]
        match = next(
            (
                rate
                for pattern, rate in pruning.layer_fractions.items()
                if any(fnmatch.fnmatchcase(name, pattern) for name in producers)
            ),
            None,
        )
        rates.append(match if match is not None else
                     pruning.fraction if pruning.scope == "layer" else None)  # fmt: skip
    return rates


def first_empty_level(config: Config, model: nn.Module) -> tuple[int, str] | None:
    """The first level whose mask keeps no weight of a tensor pruned at its own rate, or of
    the tensors ranked together, with what it empties; None when every level keeps some. The
    counts are those pruning takes: ``ceil(rate * remaining)`` a level (one-shot masks are the
    same cuts of level 0's weights). Channel pruning never removes a group's last channel."""
    if config.pruning.granularity == "channel":
        return None
    sizes = {name: parameter.numel() for name, parameter in model.named_parameters()}
    rates = layer_rates(config, model)
    own = {name: sizes[name] for name in pruned_names(config, model) if name in rates}
    together = sum(sizes[n] for n in pruned_names(config, model) if n not in rates)
    for level in range(1, config.pruning.levels + 1):
        for name, left in own.items():
            own[name] = left - removal_count(rates[name], left)
            if own[name] == 0:
                return level, name
        if together:
            together -= removal_count(config.pruning.fraction, together)
            if together == 0:
                return level, "the weights ranked together"
    return None


def layer_rates(config: Config, model: nn.Module) -> dict[str, float]:
    """Tensors pruned at a rate of their own: ``pruning.layer_fractions`` patterns (first match
    wins), then ``pruning.output_fraction`` for the output layer; with ``scope: layer`` every
    other tensor gets ``pruning.fraction``. Tensors absent here are ranked globally."""
    pruning = config.pruning
    rates: dict[str, float] = {}
    output = models.output_layer(model)
    for name in pruned_names(config, model):
        match = next(
            (
                rate
                for pattern, rate in pruning.layer_fractions.items()
                if fnmatch.fnmatchcase(name, pattern)
            ),
            None,
        )
        if match is not None:
            rates[name] = match
        elif name == output and pruning.output_fraction is not None:
            rates[name] = pruning.output_fraction
        elif pruning.scope == "layer":
            rates[name] = pruning.fraction
    return rates
