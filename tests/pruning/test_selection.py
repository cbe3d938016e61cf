"""Removing the k smallest magnitudes across tensors without a full sort: exact, ties broken
by tensor order then position, dead entries never revived."""

import numpy as np
import pytest
import torch

from scale_lth.pruning.selection import without_smallest


def smallest(values, alive, k):
    """Which entries ``without_smallest`` removed: alive before, not kept after."""
    kept = without_smallest(values, alive, k)
    return [
        (torch.ones_like(survivors) if keep is None else keep) & ~survivors
        for keep, survivors in zip(alive, kept, strict=True)
    ]


def reference(values, alive, k):
    """Stable full sort of (|value|, tensor, index) over the alive entries."""
    entries = sorted(
        (abs(float(v)), t, i)
        for t, (tensor, keep) in enumerate(zip(values, alive, strict=True))
        for i, v in enumerate(tensor.flatten().tolist())
        if keep is None or bool(keep.flatten()[i])
    )
    chosen = [torch.zeros(t.numel(), dtype=torch.bool) for t in values]
    for _, t, i in entries[:k]:
        chosen[t][i] = True
    return [c.view(v.shape) for c, v in zip(chosen, values, strict=True)]


@pytest.mark.parametrize("k", [0, 1, 17, 299, 300])
def test_small_inputs_match_a_stable_sort(k):
    generator = torch.Generator().manual_seed(k)
    values = [
        torch.randint(-5, 6, (10, 12), generator=generator).float(),
        torch.randn(200, generator=generator),
    ]
    alive = [torch.rand(10, 12, generator=generator) < 0.8, None]
    alive_count = int(alive[0].sum()) + 200
    k = min(k, alive_count)
    ours = smallest(values, alive, k)
    assert [torch.equal(a, b) for a, b in zip(ours, reference(values, alive, k), strict=True)] == [
        True,
        True,
    ]


@pytest.mark.parametrize("quantile", [0.0001, 0.2, 0.5, 0.97])
def test_large_inputs_choose_exactly_the_k_smallest(quantile):
    generator = torch.Generator().manual_seed(7)
    values = [
        torch.randn(1_500_000, generator=generator),
        torch.randn(600, 1000, generator=generator),
    ]
    alive = [None, torch.rand(600, 1000, generator=generator) < 0.5]
    k = int(quantile * (1_500_000 + int(alive[1].sum())))
    kept = without_smallest(values, alive, k)
    assert not bool((kept[1] & ~alive[1]).any())  # dead entries stay dead
    chosen = smallest(values, alive, k)
    assert sum(int(c.sum()) for c in chosen) == k
    picked = torch.cat([values[0].abs()[chosen[0]], values[1].abs()[chosen[1]]])
    rest = torch.cat([values[0].abs()[~chosen[0]], values[1].abs()[alive[1] & ~chosen[1]]])
    assert picked.max() <= rest.min()


def test_large_inputs_with_heavy_ties_take_the_earliest_positions():
    generator = torch.Generator().manual_seed(0)
    values = [torch.randint(0, 4, (1_200_000,), generator=generator).float(), torch.ones(900_000)]
    k = 700_001
    chosen = smallest(values, [None, None], k)
    assert sum(int(c.sum()) for c in chosen) == k
    flat_values = torch.cat([v.flatten() for v in values]).numpy()
    flat_chosen = torch.cat([c.flatten() for c in chosen]).numpy()
    threshold = np.sort(flat_values, kind="stable")[k - 1]
    assert (flat_values[flat_chosen] <= threshold).all() and (
        flat_values[~flat_chosen] >= threshold
    ).all()
    tied = np.flatnonzero(flat_values == threshold)
    picked = flat_chosen[tied]
    assert picked[: picked.sum()].all() and not picked[picked.sum() :].any()


def test_k_out_of_range_is_rejected():
    with pytest.raises(ValueError):
        without_smallest([torch.ones(5)], [torch.tensor([True, False, True, True, True])], 5)
