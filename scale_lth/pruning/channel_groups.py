"""Which output channels of a network must be removed together, read from its graph.

A channel is a unit of a layer's output: an output channel of a convolution, an output unit of
a linear layer. Channels that meet in a residual addition are one: removing channel c of the
stream means removing c from every layer that writes into it (the stem, each block's last
convolution, a projection shortcut) and from every layer that reads it. A ``ChannelGroup`` is
such a set: its producers (weights whose dim 0 holds the channels, with their biases), the
BatchNorm layers normalising them, and its consumers (weights whose dim 1 reads them; after a
flatten, each channel is ``per_channel`` input features in a row: the consumer's inputs over
the group's channels).

The groups are derived by tracing the model with ``torch.fx`` and following each tensor's
channels through the operations listed here; any other operation on them is refused, so a new
model is never grouped by guess. The input's channels and the network's outputs (the
classifier's classes) are never a group one could prune.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
from torch import fx, nn

# Operations that keep every channel where it is (elementwise, pooling, regularisation).
KEEP_MODULES = (
    nn.ReLU,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Dropout,
    nn.Identity,
)
KEEP_FUNCTIONS = {torch.relu, nn.functional.relu}
ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
FLATTEN_FUNCTIONS = {torch.flatten}


@dataclass(frozen=True)
class Producer:
    weight: str  # its dim 0 holds the group's channels
    bias: str | None


@dataclass(frozen=True)
class Consumer:
    weight: str  # its dim 1 reads the group's channels
    per_channel: int  # input features per channel: 1, or a feature map's size after a flatten


@dataclass(frozen=True)
class ChannelGroup:
    channels: int
    producers: tuple[Producer, ...]
    norms: tuple[str, ...]  # BatchNorm modules over the group's channels
    consumers: tuple[Consumer, ...]


@dataclass
class _Source:
    """A set of channels while the graph is read; sources joined by an addition share a root."""

    channels: int
    producers: list[Producer] = field(default_factory=list)
    norms: list[str] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)
    joined: _Source | None = None

    def root(self) -> _Source:
        source = self
        while source.joined is not None:
            source = source.joined
        return source

    def join(self, other: _Source) -> None:
        mine, theirs = self.root(), other.root()
        if mine is theirs:
            return
        if mine.channels != theirs.channels:
            raise ValueError(f"an addition of {mine.channels} and {theirs.channels} channels")
        theirs.producers += mine.producers
        theirs.norms += mine.norms
        theirs.consumers += mine.consumers
        mine.joined = theirs


@dataclass(frozen=True)
class _Flowing:
    """What a tensor of the graph carries: its channels, and whether they were flattened (each
    then a run of features, as many as the layer reading them says)."""

    source: _Source
    flat: bool = False


def channel_groups(model: nn.Module) -> list[ChannelGroup]:
    """The groups of ``model`` (an unwrapped network) whose channels may be pruned, in the order
    of their first producer."""
    traced = fx.symbolic_trace(model)
    modules = dict(traced.named_modules())
    flowing: dict[fx.Node, _Flowing] = {}
    order: list[_Source] = []
    not_prunable: list[_Source] = []
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            flowing[node] = _Flowing(_Source(channels=_input_channels(model)))
            not_prunable.append(flowing[node].source)
        elif node.op == "output":
            (result,) = node.args
            not_prunable.append(flowing[result].source)
        elif node.op == "call_module":
            flowing[node] = _through_module(node, modules[node.target], flowing, order)
        elif node.op in ("call_function", "call_method"):
            flowing[node] = _through_function(node, flowing)
        else:
            raise ValueError(f"cannot group channels through {node.op} {node.target}")
    closed = {id(source.root()) for source in not_prunable}
    groups, seen = [], set()
    for source in order:
        root = source.root()
        if id(root) in closed or id(root) in seen:
            continue
        seen.add(id(root))
        groups.append(
            ChannelGroup(
                root.channels, tuple(root.producers), tuple(root.norms), tuple(root.consumers)
            )
        )
    return groups


def _input_channels(model: nn.Module) -> int:
    """The channels of the model's input: those its first layer reads."""
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear))
    return first.in_channels if isinstance(first, nn.Conv2d) else first.in_features


def _input(node: fx.Node, flowing: dict[fx.Node, _Flowing]) -> _Flowing:
    (argument,) = [arg for arg in node.args[:1] if isinstance(arg, fx.Node)]
    return flowing[argument]


def _through_module(
    node: fx.Node, module: nn.Module, flowing: dict[fx.Node, _Flowing], order: list[_Source]
) -> _Flowing:
    name = str(node.target)
    if isinstance(module, nn.Conv2d | nn.Linear):
        if isinstance(module, nn.Conv2d) and module.groups != 1:
            raise ValueError(f"cannot group channels through the grouped convolution {name}")
        read = _input(node, flowing)
        channels, inputs = read.source.root().channels, module.weight.shape[1]
        if inputs % channels or (inputs != channels and not read.flat):
            raise ValueError(f"{name} reads {inputs} inputs from {channels} channels")
        read.source.root().consumers.append(Consumer(f"{name}.weight", inputs // channels))
        bias = f"{name}.bias" if module.bias is not None else None
        made = _Source(
            channels=module.weight.shape[0], producers=[Producer(f"{name}.weight", bias)]
        )
        order.append(made)
        return _Flowing(made)
    if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        read = _input(node, flowing)
        read.source.root().norms.append(name)
        return read
    if isinstance(module, KEEP_MODULES):
        return _input(node, flowing)
    raise ValueError(f"cannot group channels through {type(module).__name__} ({name})")


def _through_function(node: fx.Node, flowing: dict[fx.Node, _Flowing]) -> _Flowing:
    target = node.target
    tensors = [arg for arg in node.args if isinstance(arg, fx.Node)]
    if target in KEEP_FUNCTIONS or target == "relu":
        return flowing[tensors[0]]
    if target in ADD_FUNCTIONS or target in ("add", "add_", "__iadd__"):
        first, second = (flowing[tensor] for tensor in tensors)
        if first.flat != second.flat:
            raise ValueError(f"cannot group channels through the addition {node.name}")
        first.source.join(second.source)
        return first
    if target in FLATTEN_FUNCTIONS or target == "flatten":
        (tensor,) = tensors
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        if start != 1:
            raise ValueError(f"cannot group channels through a flatten from dim {start}")
        return _Flowing(flowing[tensor].source, flat=True)
    raise ValueError(f"cannot group channels through {target} ({node.name})")
