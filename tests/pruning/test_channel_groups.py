"""Channel groups read from each shipped model's graph, checked three ways: the structure known
from the papers' architectures (ResNet-20's three residual streams, LeNet's hidden layers), the
shapes of every member, and what a group means: with its channel c silenced in every producer
and BatchNorm, the network's output no longer depends on what its consumers read at c (a
missing producer, say a projection shortcut, would leave c carrying signal)."""

import pytest
import torch
from torch import nn

from scale_lth.models import build, output_layer
from scale_lth.pruning.channel_groups import ChannelGroup, channel_groups

INPUTS = {  # a batch each model takes (small images: the grouping does not depend on size)
    "lenet300": (2, 1, 28, 28),
    "conv2": (2, 3, 32, 32),
    "conv4": (2, 3, 32, 32),
    "conv6": (2, 3, 32, 32),
    "resnet20": (2, 3, 32, 32),
    "vgg19": (2, 3, 32, 32),
    "resnet18": (2, 3, 32, 32),
    "resnet50": (2, 3, 32, 32),
}


def groups_of(name: str) -> tuple[nn.Module, list[ChannelGroup]]:
    torch.manual_seed(0)
    model = build(name).eval()
    return model, channel_groups(model)


def test_resnet20_has_a_group_per_residual_stream_and_one_per_block_inside():
    _, groups = groups_of("resnet20")
    streams = [g for g in groups if len(g.producers) > 1]
    assert [g.channels for g in streams] == [16, 32, 64]
    first, second, _ = streams
    assert [p.weight for p in first.producers] == [
        "conv.weight",
        *(f"blocks.{i}.conv2.weight" for i in range(3)),
    ]
    assert first.norms == ("bn", "blocks.0.bn2", "blocks.1.bn2", "blocks.2.bn2")
    assert {c.weight for c in first.consumers} == {
        *(f"blocks.{i}.conv1.weight" for i in range(4)),
        "blocks.3.shortcut.0.weight",
    }
    assert "blocks.3.shortcut.0.weight" in {p.weight for p in second.producers}
    inner = [g for g in groups if len(g.producers) == 1]
    assert [g.producers[0].weight for g in inner] == [f"blocks.{i}.conv1.weight" for i in range(9)]
    assert all(g.consumers[0].weight.endswith("conv2.weight") for g in inner)


def test_lenet_groups_are_its_hidden_units_and_never_the_classes():
    _, groups = groups_of("lenet300")
    assert [(g.channels, g.producers[0].weight, g.consumers[0].weight) for g in groups] == [
        (300, "hidden.0.weight", "hidden.1.weight"),
        (100, "hidden.1.weight", "output.weight"),
    ]


@pytest.mark.parametrize("name, count", [("conv2", 4), ("vgg19", 16), ("resnet18", 12),
                                         ("resnet50", 37)])  # fmt: skip
def test_every_layer_but_the_classifier_writes_into_exactly_one_group(name, count):
    model, groups = groups_of(name)
    produced = [p.weight for g in groups for p in g.producers]
    assert len(produced) == len(set(produced))
    layers = {
        f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)
    }
    assert set(produced) == layers - {output_layer(model)}
    assert len(groups) == count


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_every_member_has_the_groups_channels_where_it_holds_them(name):
    model, groups = groups_of(name)
    parameters, modules = dict(model.named_parameters()), dict(model.named_modules())
    for group in groups:
        for producer in group.producers:
            assert parameters[producer.weight].shape[0] == group.channels
            if producer.bias is not None:
                assert parameters[producer.bias].shape == (group.channels,)
        for norm in group.norms:
            assert modules[norm].num_features == group.channels
        for consumer in group.consumers:
            assert parameters[consumer.weight].shape[1] == group.channels * consumer.per_channel


def silence(model: nn.Module, group: ChannelGroup, channel: int) -> None:
    """Channel ``channel`` of ``group`` made exactly zero where it is written."""
    parameters, modules = dict(model.named_parameters()), dict(model.named_modules())
    with torch.no_grad():
        for producer in group.producers:
            parameters[producer.weight][channel] = 0
            if producer.bias is not None:
                parameters[producer.bias][channel] = 0
        for norm in group.norms:
            modules[norm].weight[channel] = 0
            modules[norm].bias[channel] = 0


def scramble_what_consumers_read(model: nn.Module, group: ChannelGroup, channel: int) -> None:
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for consumer in group.consumers:
            weight = parameters[consumer.weight]
            start, stop = channel * consumer.per_channel, (channel + 1) * consumer.per_channel
            weight[:, start:stop] = torch.randn_like(weight[:, start:stop]) * 10


@pytest.mark.parametrize("name", ["lenet300", "conv2", "resnet20", "vgg19", "resnet18"])
def test_a_silenced_channel_of_a_group_no_longer_reaches_the_output(name):
    model, groups = groups_of(name)
    images = torch.randn(INPUTS[name])
    for group in groups:
        channel = group.channels // 2
        silence(model, group, channel)
        before = model(images)
        scramble_what_consumers_read(model, group, channel)
        assert torch.equal(model(images), before), group.producers[0].weight


def test_a_channel_silenced_in_only_some_of_its_stream_still_reaches_the_output():
    """The check above has teeth: leave out the projection shortcut and the channel lives on."""
    model, groups = groups_of("resnet20")
    stream = next(g for g in groups if g.channels == 32 and len(g.producers) > 1)
    partial = ChannelGroup(
        stream.channels,
        tuple(p for p in stream.producers if "shortcut" not in p.weight),
        tuple(n for n in stream.norms if "shortcut" not in n),
        stream.consumers,
    )
    images = torch.randn(INPUTS["resnet20"])
    silence(model, partial, 5)
    before = model(images)
    scramble_what_consumers_read(model, partial, 5)
    assert not torch.equal(model(images), before)


@pytest.mark.parametrize(
    "name, blocks, last, stems",
    [("resnet18", 2, "conv2", ["conv1.weight"]), ("resnet50", [3, 4, 6, 3], "conv3", [])],
)
def test_torchvisions_resnets_have_a_group_per_stage_stream(name, blocks, last, stems):
    """ResNet-18: the stem's output is stage 1's stream (basic blocks keep its width); ResNet-50:
    every stage starts with a projection shortcut, and the stem is a group of its own."""
    _, groups = groups_of(name)
    counts = [blocks] * 4 if isinstance(blocks, int) else blocks
    streams = [g for g in groups if len(g.producers) > 1]
    assert len(streams) == 4
    for stage, (stream, count) in enumerate(zip(streams, counts, strict=True), start=1):
        projection = [] if stage == 1 and stems else [f"layer{stage}.0.downsample.0.weight"]
        expected = [*(stems if stage == 1 else []), *projection,
                    *(f"layer{stage}.{b}.{last}.weight" for b in range(count))]  # fmt: skip
        assert sorted(p.weight for p in stream.producers) == sorted(expected), stage
    inner = [g.producers[0].weight for g in groups if len(g.producers) == 1]
    per_block = ["conv1"] if last == "conv2" else ["conv1", "conv2"]
    expected_inner = [f"layer{s}.{b}.{c}.weight" for s, count in enumerate(counts, start=1)
                      for b in range(count) for c in per_block]  # fmt: skip
    if not stems:
        expected_inner = ["conv1.weight", *expected_inner]
    assert inner == expected_inner
