"""Exact selection of the k smallest magnitudes across many tensors, without sorting them.

Ranking ResNet-50's 25.5M weights by a full sort takes a large fraction of a second to
seconds. This makes one pass over the tensors in cache-sized chunks with reused buffers, in
parallel threads: bounds around the k-th magnitude come from a fixed-size sample; everything
below the lower bound is chosen as it is read, the few between the bounds are gathered, and
exactly the missing number of them is taken by a stable sort. Ties go to the earliest tensor,
then the lowest index, so exactly k entries are chosen, the same ones every time. Entries that
are not ``alive`` are never chosen.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")
_CHUNK = 1 << 18
_SAMPLE = 1 << 16
_SMALL = 1 << 20


class _Magnitudes:
    """Flat float32 views of the tensors and their alive masks, read chunk by chunk; tensors
    are processed in parallel threads (numpy releases the GIL), each with its own buffer."""

    def __init__(self, values: Sequence[torch.Tensor], alive: Sequence[torch.Tensor | None]):
        self.shapes = [tuple(v.shape) for v in values]
        self.values = [v.detach().to("cpu", torch.float32).flatten().numpy() for v in values]
        self.alive = [None if a is None else a.to("cpu").flatten().numpy() for a in alive]
        self.sizes = [v.size for v in self.values]
        self.threads = max(1, min(torch.get_num_threads(), len(os.sched_getaffinity(0))))

    def chunks(self, index: int, buffer: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, magnitudes)`` of tensor ``index`` in ``buffer``; dead entries read as +inf,
        or NaN for a dead zero (|w| / alive): neither is ever <= a finite threshold, and the
        division is several times faster than masking."""
        values, alive = self.values[index], self.alive[index]
        for start in range(0, values.size, _CHUNK):
            stop = min(start + _CHUNK, values.size)
            magnitudes = buffer[: stop - start]
            np.abs(values[start:stop], out=magnitudes)
            if alive is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    np.divide(magnitudes, alive[start:stop], out=magnitudes)
            yield start, magnitudes

    def each_tensor(self, work: Callable[[int, np.ndarray], T]) -> list[T]:
        """``work(index, buffer)`` for every tensor, in threads; results in tensor order."""
        local = threading.local()

        def run(index: int) -> T:
            if not hasattr(local, "buffer"):
                local.buffer = np.empty(_CHUNK, np.float32)
            return work(index, local.buffer)

        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(run, range(len(self.values))))

    def sample(self, count: int) -> np.ndarray:
        positions = np.sort(np.random.default_rng(0).integers(sum(self.sizes), size=count))
        bounds = np.cumsum([0, *self.sizes])
        picked = []
        for index, values in enumerate(self.values):
            local = positions[(positions >= bounds[index]) & (positions < bounds[index + 1])]
            local = local - bounds[index]
            magnitudes = np.abs(values[local])
            if self.alive[index] is not None:
                magnitudes[~self.alive[index][local]] = np.inf
            picked.append(magnitudes)
        return np.sort(np.concatenate(picked))

    def everything(self) -> np.ndarray:
        def copy(index: int, buffer: np.ndarray) -> list[np.ndarray]:
            return [chunk.copy() for _, chunk in self.chunks(index, buffer)]

        return np.concatenate([piece for pieces in self.each_tensor(copy) for piece in pieces])


def _choose_exactly(chosen: np.ndarray, values: np.ndarray, where: np.ndarray, count: int):
    """Mark in the flat ``chosen`` the ``count`` smallest candidates (``values`` at flat
    positions ``where``, in increasing position order); equal values go to the earlier one."""
    value = np.partition(values, count - 1)[count - 1]
    below = values < value
    chosen[where[below]] = True
    tied = where[values == value]
    chosen[tied[: count - int(np.count_nonzero(below))]] = True


def smallest_magnitudes(
    values: Sequence[torch.Tensor], alive: Sequence[torch.Tensor | None], k: int
) -> list[torch.Tensor]:
    """Bool tensors (CPU, shaped like ``values``) marking exactly the k alive entries of
    smallest ``|value|`` across all tensors; ``alive[i] = None`` means all of tensor i.

    One pass: every magnitude below a sampled lower bound is chosen outright, those up to a
    sampled upper bound are gathered, and the exact remainder is taken from those few.
    """
    magnitudes = _Magnitudes(values, alive)
    alive_count = sum(
        size if a is None else int(np.count_nonzero(a))
        for size, a in zip(magnitudes.sizes, magnitudes.alive, strict=True)
    )
    if not 0 <= k <= alive_count:
        raise ValueError(f"k must be in [0, {alive_count}], got {k}")
    offsets = np.cumsum([0, *magnitudes.sizes])
    flat = np.zeros(offsets[-1], bool)
    chosen = [flat[offsets[i] : offsets[i + 1]] for i in range(len(magnitudes.sizes))]
    if 0 < k and flat.size > _SMALL:
        sample = magnitudes.sample(_SAMPLE)
        quantile = k / flat.size
        margin = 4.0 * np.sqrt(quantile * (1 - quantile) / _SAMPLE) + 2.0 / _SAMPLE
        low = sample[max(0, int(np.floor((quantile - margin) * _SAMPLE)))]
        high = sample[min(_SAMPLE - 1, int(np.ceil((quantile + margin) * _SAMPLE)))]

        def choose_below_and_gather(index: int, buffer: np.ndarray):
            below, near, where = 0, [], []
            for start, chunk in magnitudes.chunks(index, buffer):
                under = chosen[index][start : start + chunk.size]
                np.less(chunk, low, out=under)
                below += int(np.count_nonzero(under))
                band = np.flatnonzero((chunk <= high) & ~under)
                near.append(chunk[band])
                where.append(band + (offsets[index] + start))
            return below, near, where

        parts = magnitudes.each_tensor(choose_below_and_gather)
        below = sum(part[0] for part in parts)
        near = np.concatenate([piece for part in parts for piece in part[1]])
        if below < k <= below + near.size:
            where = np.concatenate([piece for part in parts for piece in part[2]])
            _choose_exactly(flat, near, where, k - below)
            return _as_tensors(chosen, magnitudes.shapes)
        flat[:] = False  # the sample missed the k-th value (rare): start again, exactly
    if k > 0:  # small inputs: look at them all
        _choose_exactly(flat, magnitudes.everything(), np.arange(flat.size), k)
    return _as_tensors(chosen, magnitudes.shapes)


def _as_tensors(chosen: list[np.ndarray], shapes: list[tuple]) -> list[torch.Tensor]:
    return [
        torch.from_numpy(flags).view(shape) for flags, shape in zip(chosen, shapes, strict=True)
    ]
