"""Selecting the k smallest scores without a full sort: exact, ties broken by position."""

import pytest
import torch

from scale_lth.pruning.selection import kth_smallest, smallest


@pytest.mark.parametrize("size", [10, 5_000, 3_000_000])
@pytest.mark.parametrize("quantile", [0.0001, 0.2, 0.5, 0.97])
def test_kth_smallest_equals_a_full_sort(size, quantile):
    scores = torch.rand(size, generator=torch.Generator().manual_seed(size))
    k = max(1, int(quantile * size))
    assert kth_smallest(scores, k) == scores.sort().values[k - 1].item()


def test_large_inputs_with_heavy_ties_choose_exactly_k_lowest_positions():
    scores = torch.randint(0, 4, (2_000_000,), generator=torch.Generator().manual_seed(0)).float()
    k = 700_001
    chosen = smallest(scores, k)
    assert int(chosen.sum()) == k
    threshold = kth_smallest(scores, k)
    assert bool((scores[chosen] <= threshold).all()) and bool((scores[~chosen] >= threshold).all())
    tied = torch.nonzero(scores == threshold).flatten()
    picked = chosen[tied]
    # among equal scores the chosen ones are a prefix by position
    assert bool(picked[: int(picked.sum())].all()) and not bool(picked[int(picked.sum()) :].any())


def test_k_zero_and_out_of_range():
    assert not smallest(torch.rand(5), 0).any()
    with pytest.raises(ValueError):
        kth_smallest(torch.rand(5), 6)
