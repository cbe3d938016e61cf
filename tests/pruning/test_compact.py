"""A network compacted by a channel mask: its outputs equal the masked network's (each removed
channel silenced in its producers and BatchNorm layers), within 1e-5 in float32 in eval mode,
and it holds exactly the parameters the mask keeps: the entries of every weight whose output
and input channels both survive, and the biases and BatchNorm entries of surviving channels."""

import pytest
import torch
from torch import nn

from scale_lth.pruning.channel_groups import channel_groups
from scale_lth.pruning.compact import compact
from tests.pruning.test_channel_groups import INPUTS, groups_of, silence


def some_channels(groups, seed: int = 0) -> list[torch.Tensor]:
    """About half of each group's channels, at least one."""
    generator = torch.Generator().manual_seed(seed)
    kept = []
    for group in groups:
        flags = torch.rand(group.channels, generator=generator) < 0.5
        flags[torch.randint(group.channels, (1,), generator=generator)] = True
        kept.append(flags)
    return kept


def with_statistics(model: nn.Module, shape) -> nn.Module:
    """BatchNorm running statistics of a few batches, as a trained network has."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(shape))
    return model.eval()


def parameters_kept(model: nn.Module, groups, kept) -> int:
    """Entries of each parameter whose every channel index survives, counted on masks."""
    survive = {name: torch.ones_like(p, dtype=torch.bool) for name, p in model.named_parameters()}
    for group, flags in zip(groups, kept, strict=True):
        for producer in group.producers:
            survive[producer.weight] &= flags.view(-1, *[1] * (survive[producer.weight].dim() - 1))
            if producer.bias is not None:
                survive[producer.bias] &= flags
        for norm in group.norms:
            survive[f"{norm}.weight"] &= flags
            survive[f"{norm}.bias"] &= flags
        for consumer in group.consumers:
            columns = flags.repeat_interleave(consumer.per_channel)
            weight = survive[consumer.weight]
            survive[consumer.weight] &= columns.view(1, -1, *[1] * (weight.dim() - 2))
    return sum(int(flags.sum()) for flags in survive.values())


@pytest.mark.parametrize("name", ["lenet300", "conv2", "resnet20", "vgg19", "resnet18",
                                  "resnet50"])  # fmt: skip
def test_the_compacted_network_computes_what_the_masked_one_does_with_what_it_keeps(name):
    model, groups = groups_of(name)
    with_statistics(model, INPUTS[name])
    kept = some_channels(groups)
    masked = model
    smaller = compact(model, groups, kept)
    for group, flags in zip(groups, kept, strict=True):
        for channel in (~flags).nonzero().flatten().tolist():
            silence(masked, group, channel)
    images = torch.randn(INPUTS[name])
    with torch.no_grad():
        assert (smaller(images) - masked(images)).abs().max() <= 1e-5
    assert sum(p.numel() for p in smaller.parameters()) == parameters_kept(masked, groups, kept)
    assert sum(p.numel() for p in smaller.parameters()) < sum(p.numel() for p in model.parameters())


def test_a_compacted_network_can_be_grouped_and_compacted_again():
    model, groups = groups_of("resnet20")
    smaller = compact(model, groups, some_channels(groups))
    again = channel_groups(smaller)
    assert [len(g.producers) for g in again] == [len(g.producers) for g in groups]
    assert compact(smaller, again, some_channels(again, seed=1))(
        torch.zeros(INPUTS["resnet20"])
    ).shape == (2, 10)


def test_flags_that_empty_a_group_are_refused():
    model, groups = groups_of("lenet300")
    empty = [torch.zeros(g.channels, dtype=torch.bool) for g in groups]
    with pytest.raises(ValueError, match="flags"):
        compact(model, groups, empty)
