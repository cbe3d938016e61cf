"""Channel pruning's choices against their definitions: exact counts (ceil of the fraction of
alive channels, over the groups ranked together or each group alone), the lowest scores removed,
ties to the earlier group and lower channel, never a group's last channel, never a channel
revived; the weight mask of a channel choice zeroes exactly the removed channels' rows and
columns, and keeps as many weights as the compacted network has."""

import math

import pytest
import torch

from scale_lth.pruning.channels import (
    channel_mask,
    channel_scores,
    kept_channels,
    random_channels,
    remove_channels,
    top_channels,
)
from scale_lth.pruning.compact import compact
from tests.pruning.test_channel_groups import groups_of


def same(flags, others) -> bool:
    return len(flags) == len(others) and all(
        torch.equal(a, b) for a, b in zip(flags, others, strict=True)
    )


def everything(sizes):
    return [torch.ones(size, dtype=torch.bool) for size in sizes]


def test_a_global_level_removes_the_exact_count_of_lowest_scores():
    torch.manual_seed(0)
    scores = [torch.rand(size) for size in (10, 20, 30)]
    kept = remove_channels(scores, everything((10, 20, 30)), 0.3, [None, None, None])
    assert sum(int((~flags).sum()) for flags in kept) == math.ceil(0.3 * 60)
    removed = torch.cat([s[~k] for s, k in zip(scores, kept, strict=True)])
    survived = torch.cat([s[k] for s, k in zip(scores, kept, strict=True)])
    assert removed.max() < survived.min()


def test_a_group_keeps_its_last_channel_and_the_count_stays_exact():
    scores = [torch.tensor([0.01, 0.02]), torch.tensor([0.5, 0.6, 0.7, 0.8])]
    kept = remove_channels(scores, everything((2, 4)), 0.5, [None, None])
    assert kept[0].tolist() == [False, True]  # its best channel stays
    assert sum(int((~flags).sum()) for flags in kept) == 3  # ceil(0.5 x 6)
    assert kept[1].tolist() == [False, False, True, True]


def test_equal_scores_go_from_the_earlier_group_and_the_lower_channel_first():
    scores = [torch.full((3,), 0.5), torch.full((3,), 0.5)]
    kept = remove_channels(scores, everything((3, 3)), 0.5, [None, None])
    assert [flags.tolist() for flags in kept] == [[False, False, True], [False, True, True]]


def test_groups_with_rates_of_their_own_lose_their_own_count_and_nothing_revives():
    torch.manual_seed(1)
    scores = [torch.rand(8), torch.rand(16)]
    alive = [torch.tensor([True] * 6 + [False] * 2), torch.ones(16, dtype=torch.bool)]
    kept = remove_channels(scores, alive, 0.2, [0.5, 0.25])
    assert int(kept[0].sum()) == 6 - math.ceil(0.5 * 6)
    assert int(kept[1].sum()) == 16 - math.ceil(0.25 * 16)
    assert not (kept[0] & ~alive[0]).any()


def test_a_channel_mask_zeroes_exactly_the_removed_rows_and_columns():
    model, groups = groups_of("conv2")
    shapes = {name: p.shape for name, p in model.named_parameters()}
    kept = random_channels([torch.rand(g.channels) < 0.6 for g in groups], seed=3)
    mask = channel_mask(shapes, groups, kept)
    assert same(kept_channels(mask, groups), kept)
    # conv 1 feeds conv 2, conv 2 feeds fc 1 after a flatten: each weight keeps exactly the
    # entries whose output channel and input channel both survive
    conv1, conv2, fc1 = (mask[g.producers[0].weight] for g in groups[:3])
    assert torch.equal(conv1, kept[0].view(-1, 1, 1, 1).expand_as(conv1))
    both = kept[1].view(-1, 1, 1, 1) & kept[0].view(1, -1, 1, 1)
    assert torch.equal(conv2, both.expand_as(conv2))
    per_channel = groups[1].consumers[0].per_channel
    assert per_channel * groups[1].channels == fc1.shape[1]
    flat = kept[2].view(-1, 1) & kept[1].repeat_interleave(per_channel).view(1, -1)
    assert torch.equal(fc1, flat)


@pytest.mark.parametrize("name", ["lenet300", "resnet20", "resnet18"])
def test_a_channel_mask_keeps_as_many_weights_as_the_compacted_network_has(name):
    model, groups = groups_of(name)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    kept = random_channels([torch.rand(g.channels) < 0.5 for g in groups], seed=0)
    kept = [flags if flags.any() else torch.ones_like(flags) for flags in kept]
    mask = channel_mask(shapes, groups, kept)
    smaller = dict(compact(model, groups, kept).named_parameters())
    assert mask.num_kept == sum(smaller[n].numel() for n in mask)
    assert mask.layer_kept() == {n: smaller[n].numel() for n in mask}


def test_l1_is_the_mean_magnitude_of_a_channels_rows_and_bn_gamma_needs_batchnorm():
    model, groups = groups_of("resnet20")
    weights = model.state_dict()
    stream = groups[0]
    expected = torch.stack(
        [torch.cat([weights[p.weight][c].abs().flatten() for p in stream.producers]).mean()
         for c in range(stream.channels)]
    )  # fmt: skip
    assert torch.allclose(channel_scores(weights, groups)[0], expected)
    gammas = torch.stack([weights[f"{n}.weight"].abs() for n in stream.norms]).mean(0)
    assert torch.equal(channel_scores(weights, groups, "bn_gamma")[0], gammas)
    lenet, its_groups = groups_of("lenet300")
    with pytest.raises(ValueError, match="BatchNorm"):
        channel_scores(lenet.state_dict(), its_groups, "bn_gamma")


def test_random_channels_keep_each_groups_count_and_top_channels_the_total():
    like = [torch.tensor([True, False, True, False]), torch.tensor([False, True, True])]
    chosen = random_channels(like, seed=5)
    assert [int(flags.sum()) for flags in chosen] == [2, 2]
    assert same(random_channels(like, seed=5), chosen)
    top = top_channels([torch.tensor([0.1, 0.9, 0.3]), torch.tensor([0.2, 0.05])], keep=3)
    assert [flags.tolist() for flags in top] == [[False, True, True], [True, False]]
