"""Exact removal of the k smallest magnitudes across many tensors, without sorting them.

Ranking ResNet-50's 25.5M weights by a full sort takes half a second or more. Here bounds
around the k-th magnitude come from a fixed-size sample; then one compiled pass per tensor
(tensors in parallel threads) writes the survivors (alive and at least the lower bound) and
gathers the few alive entries between the bounds; exactly the missing number of those is
removed by a partition. Ties go to the earliest tensor, then the lowest index, so exactly k
entries go, the same ones every time. Entries that are not ``alive`` stay removed.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

_SAMPLE = 1 << 16
_BLOCK = 256  # entries classified per vectorised inner loop
_SMALL = 1 << 20  # below this many entries, every alive entry goes through the partition
_NOTHING = (-1.0, -1.0)  # bounds with no magnitude below or between them
_EVERYTHING = (-1.0, math.inf)  # bounds that put every alive entry between them
_ALL_ALIVE = np.ones(1, np.uint8)  # what ``_split`` gets for ``alive`` where it reads none


# One signature only (``alive`` is always an array, ``all_alive`` says when to ignore it): numba
# was seen to mistype a second specialization compiled later in the same process ("Cannot modify
# readonly array" on a local array), so none is ever compiled.
@numba.njit(nogil=True, cache=True)
def _split(values, alive, all_alive, low, high, kept, band_values, band_where):
    """One pass over a flat tensor (flags as uint8; with ``all_alive`` every entry is alive and
    ``alive`` is not read): ``kept[i]`` = alive and ``|values[i]| >= low``; the kept entries up
    to ``high`` are appended to the band buffers (magnitude, position). Returns the band's
    size.

    Blocks of _BLOCK entries: a branch-free loop that vectorises classifies a block into
    cache-resident flags, then only the flagged 8-byte words are looked at one by one."""
    low, high = np.float32(low), np.float32(high)
    flags = np.zeros(_BLOCK, np.uint8)
    words = flags.view(np.uint64)
    found = 0
    whole = values.size // _BLOCK * _BLOCK
    for start in range(0, whole, _BLOCK):
        block = values[start : start + _BLOCK]
        block_kept = kept[start : start + _BLOCK]
        for j in range(_BLOCK):  # a constant trip count: this loop vectorises
            is_alive = np.uint8(1) if all_alive else alive[start + j]
            magnitude = abs(block[j])
            keep = np.uint8(np.uint8(magnitude >= low) & is_alive)
            block_kept[j] = keep
            flags[j] = np.uint8(np.uint8(magnitude <= high) & keep)
        for word in range(_BLOCK // 8):
            if words[word]:
                for j in range(word * 8, word * 8 + 8):
                    if flags[j]:
                        band_values[found] = abs(block[j])
                        band_where[found] = start + j
                        found += 1
    for i in range(whole, values.size):  # the last, partial block, one by one
        magnitude = abs(values[i])
        is_alive = np.uint8(1) if all_alive else alive[i]
        kept[i] = np.uint8(np.uint8(magnitude >= low) & is_alive)
        if kept[i] and magnitude <= high:
            band_values[found], band_where[found] = magnitude, i
            found += 1
    return found


class _Split:
    """One pass over every tensor with bounds ``low``/``high``: the survivors so far (alive,
    at least ``low``), how many alive entries there are and lie below ``low``, and the band
    (alive entries from ``low`` to ``high``: magnitudes and flat positions)."""

    def __init__(self, values: list[np.ndarray], alive: list[np.ndarray | None], low, high):
        offsets = np.cumsum([0, *(v.size for v in values)])
        self.kept = np.empty(offsets[-1], np.bool_)
        self.parts = [self.kept[offsets[i] : offsets[i + 1]] for i in range(len(values))]

        local = threading.local()

        def run(index: int):
            start, stop, keep = offsets[index], offsets[index + 1], alive[index]
            size = stop - start
            if getattr(local, "band_values", np.empty(0)).size < size:
                # reused by this thread's later tensors: fresh pages cost (2 MB zeroed at a
                # time under transparent huge pages) even where a few entries are written
                local.band_values = np.empty(size, np.float32)
                local.band_where = np.empty(size, np.int64)
            found = _split(
                values[index],
                _ALL_ALIVE if keep is None else keep.view(np.uint8),
                keep is None,
                low,
                high,
                self.kept[start:stop].view(np.uint8),
                local.band_values,
                local.band_where,
            )
            alive_count = size if keep is None else np.count_nonzero(keep)
            below = alive_count - np.count_nonzero(self.kept[start:stop])
            return (
                (alive_count, below),
                local.band_values[:found].copy(),
                local.band_where[:found] + start,
            )

        threads = max(1, min(torch.get_num_threads(), len(os.sched_getaffinity(0)), len(values)))
        largest_first = sorted(range(len(values)), key=lambda index: -values[index].size)
        with ThreadPoolExecutor(threads) as pool:  # largest first: the threads finish together
            done = dict(zip(largest_first, pool.map(run, largest_first), strict=True))
        results = [done[index] for index in range(len(values))]
        self.alive_count = sum(int(r[0][0]) for r in results)
        self.below = sum(int(r[0][1]) for r in results)
        self.band_values = np.concatenate([r[1] for r in results])
        self.band_where = np.concatenate([r[2] for r in results])

    def remove_from_band(self, count: int) -> None:
        """Remove the ``count`` smallest band entries (equal values: the earlier one first)."""
        if count == 0:
            return
        values, where = self.band_values, self.band_where
        value = np.partition(values, count - 1)[count - 1]
        smaller = values < value
        self.kept[where[smaller]] = False
        tied = where[values == value]
        self.kept[tied[: count - int(np.count_nonzero(smaller))]] = False


def _sample_bounds(values: list[np.ndarray], alive: list[np.ndarray | None], k: int, total: int):
    """Magnitudes that bracket the k-th smallest alive one with high probability, from a
    seeded sample spread over the tensors in proportion to their sizes."""
    rng = np.random.default_rng(0)
    picked = []
    for flat, keep in zip(values, alive, strict=True):
        positions = rng.integers(flat.size, size=max(1, round(_SAMPLE * flat.size / total)))
        magnitudes = np.abs(flat[positions])
        if keep is not None:
            magnitudes[~keep[positions]] = np.inf
        picked.append(magnitudes)
    sample = np.sort(np.concatenate(picked))
    size = sample.size
    quantile = k / total
    margin = 4.0 * math.sqrt(quantile * (1 - quantile) / size) + 2.0 / size
    low = sample[max(0, math.floor((quantile - margin) * size))]
    high = sample[min(size - 1, math.ceil((quantile + margin) * size))]
    return float(low), float(high)


def without_smallest(
    values: Sequence[torch.Tensor], alive: Sequence[torch.Tensor | None], k: int
) -> list[torch.Tensor]:
    """Bool tensors (CPU, shaped like ``values``): the alive entries that remain once exactly
    the k alive entries of smallest ``|value|`` across all tensors are removed;
    ``alive[i] = None`` means all of tensor i is alive."""
    flats = [v.detach().to("cpu", torch.float32).flatten().numpy() for v in values]
    keeps = [None if a is None else a.to("cpu").flatten().numpy() for a in alive]
    total = sum(flat.size for flat in flats)
    split = _Split(flats, keeps, *_NOTHING) if k == 0 else None
    if 0 < k and total > _SMALL:
        split = _Split(flats, keeps, *_sample_bounds(flats, keeps, k, total))
        if not split.below < k <= split.below + split.band_values.size:
            split = None  # the sample missed the k-th value (rare): look at every entry
    if split is None:
        split = _Split(flats, keeps, *_EVERYTHING)
    if not 0 <= k <= split.alive_count:
        raise ValueError(f"k must be in [0, {split.alive_count}], got {k}")
    split.remove_from_band(k - split.below)
    return [
        torch.from_numpy(part).view(tuple(v.shape))
        for part, v in zip(split.parts, values, strict=True)
    ]
