"""Exact selection of the k smallest scores without sorting them all.

Ranking ResNet-50's 25.5M weights by a full sort takes seconds; this takes a few passes over
the scores: estimate the k-th value from a fixed-size sample, narrow to the few scores near it,
find the exact k-th value among those, and break ties at it by position so that exactly k
entries are chosen, the same ones every time.
"""

from __future__ import annotations

import math

import torch

_SAMPLE = 1 << 16
_SMALL = 1 << 20


def kth_smallest(scores: torch.Tensor, k: int) -> float:
    """The k-th smallest value (1-based) of a flat tensor; exact."""
    n = scores.numel()
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    if n <= _SMALL:
        return scores.kthvalue(k).values.item()
    generator = torch.Generator(device=scores.device).manual_seed(0)
    picks = torch.randint(n, (_SAMPLE,), generator=generator, device=scores.device)
    sample = scores[picks].sort().values
    quantile = k / n
    margin = 4.0 * math.sqrt(quantile * (1 - quantile) / _SAMPLE) + 2.0 / _SAMPLE
    low = sample[max(0, math.floor((quantile - margin) * _SAMPLE))]
    high = sample[min(_SAMPLE - 1, math.ceil((quantile + margin) * _SAMPLE))]
    below = int(torch.count_nonzero(scores < low))
    near = scores[(scores >= low) & (scores <= high)]
    if below < k <= below + near.numel():
        return near.kthvalue(k - below).values.item()
    return scores.kthvalue(k).values.item()  # the sample missed: rare, still exact


def smallest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """A bool tensor marking exactly the k smallest scores; ties go to the lowest positions."""
    chosen = torch.zeros_like(scores, dtype=torch.bool)
    if k == 0:
        return chosen
    threshold = kth_smallest(scores, k)
    torch.lt(scores, threshold, out=chosen)
    missing = k - int(torch.count_nonzero(chosen))
    if missing > 0:
        tied = torch.nonzero(scores == threshold).flatten()[:missing]
        chosen[tied] = True
    return chosen
