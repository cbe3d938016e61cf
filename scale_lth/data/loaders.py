"""FFCV loaders for training and evaluation, built from a data folder's ``info.json``.

Pipelines by data kind:

- grayscale arrays (MNIST, digits): decoded as stored, no augmentation (as in the LTH paper);
- ``pad_crop_flip`` (CIFAR-10): random 4-pixel translation with zero fill plus horizontal flip;
- ``resized_crop_flip`` (ImageNet): RandomResizedCrop + flip for training, a 224/256 center
  crop for evaluation.

Normalisation happens in torch after the loader, on the device: FFCV's CPU ``NormalizeImage``
after ``ToTorchImage`` hangs, and its GPU version needs CuPy. Training loaders shard with FFCV's
``distributed=True`` (RANDOM order, reshuffled each epoch); evaluation loaders give rank ``r`` of
``w`` the examples ``r, r + w, ...`` so the ranks' shards are disjoint and cover the split once
(or once the seeded subsample of it they are asked for, see ``subsample``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from scale_lth.data.errors import DataError
from scale_lth.data.info import DataInfo

DEFAULT_RESOLUTION = 224
KEEP_DECODED_BYTES = 256 * 2**20  # shards up to this size (float32) are decoded only once
CENTER_CROP_RATIO = 224 / 256
PIPELINES = ("plain", "pad_crop_flip", "resized_crop_flip", "center_crop")


class Batches:
    """Iterates ``(normalised float images, int64 labels)`` on the device from an FFCV Loader."""

    def __init__(self, loader, info: DataInfo, device: torch.device, channels_last: bool) -> None:
        self.loader = loader
        shape = (1, info.channels, 1, 1)
        self.mean = torch.tensor(info.mean, dtype=torch.float32, device=device).view(shape)
        self.std = torch.tensor(info.std, dtype=torch.float32, device=device).view(shape)
        self.channels_last = channels_last

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def epoch(self) -> int:
        """The epoch the next iteration reads (sets the shuffle; restore it when resuming)."""
        return self.loader.next_epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.loader.next_epoch = value

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in self.loader:
            yield self.normalised(images), labels.to(torch.long, copy=True)  # FFCV reuses buffers

    def normalised(self, images: torch.Tensor) -> torch.Tensor:
        """``(images - mean) / std`` as float32, in place after the conversion (one new tensor
        a batch, not three), in the layout asked for."""
        images = images.float().sub_(self.mean).div_(self.std)
        if self.channels_last and images.dim() == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        return images


class Held:
    """A split small enough to hold, decoded once and kept on the device as one tensor of
    normalised images and one of labels. Its batches hold the same examples in the same order
    as the FFCV loader it replaces, so a run reads the same values, bit for bit:

    - evaluation (``shuffled=None``): the shard in stored order, in consecutive batches;
    - training: each epoch, the examples FFCV's own traversal order picks for that epoch
      (seed, epoch and this rank's shard), the last partial batch dropped.
    """

    def __init__(self, decoded: Batches, batch_size: int, shuffled=None) -> None:
        batches = list(decoded)
        self.images = torch.cat([images for images, _ in batches]) if batches else torch.empty(0)
        self.labels = torch.cat([labels for _, labels in batches]) if batches else torch.empty(0)
        self.batch_size = batch_size
        self.shuffled = shuffled  # the training Loader whose traversal order is followed
        self.channels_last = decoded.channels_last
        self._epoch = 0

    def __len__(self) -> int:
        if self.shuffled is not None:
            return len(self.shuffled)
        return math.ceil(len(self.labels) / self.batch_size)

    @property
    def epoch(self) -> int:
        """The epoch the next iteration reads (sets the shuffle; restore it when resuming)."""
        return self.shuffled.next_epoch if self.shuffled is not None else self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        if self.shuffled is not None:
            self.shuffled.next_epoch = value
        self._epoch = value

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.shuffled is None:
            for start in range(0, len(self.labels), self.batch_size):
                yield (
                    self.images[start : start + self.batch_size],
                    self.labels[start : start + self.batch_size],
                )
            return
        order = self.shuffled.next_traversal_order()[: len(self) * self.batch_size]
        self.shuffled.next_epoch += 1
        order = torch.from_numpy(np.asarray(order, dtype=np.int64)).to(self.images.device)
        for rows in order.split(self.batch_size):
            images = self.images[rows]
            if self.channels_last and images.dim() == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, self.labels[rows]


@dataclass(frozen=True)
class LoaderOptions:
    """How batches are produced; none of it changes which examples a rank reads."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    threads: int = 1  # FFCV decoding threads (capped by this process's CPU affinity)
    resolution: int | None = None  # crop side for ImageNet-like data; None: 224
    channels_last: bool = False
    os_cache: bool = True
    pipeline: str | None = None  # None: the data's default for training or evaluation
    keep_decoded_bytes: int = KEEP_DECODED_BYTES  # 0: decode every epoch (streamed)


def loader_threads(requested: int) -> int:
    """FFCV threads within this process's CPU affinity (FFCV's own default crashes numba there)."""
    return max(1, min(requested, len(os.sched_getaffinity(0))))


def _image_pipeline(info: DataInfo, pipeline: str, options: LoaderOptions) -> list:
    from scale_lth.data.ffcv_api import (
        CenterCropRGBImageDecoder,
        NDArrayDecoder,
        RandomHorizontalFlip,
        RandomResizedCropRGBImageDecoder,
        RandomTranslate,
        SimpleRGBImageDecoder,
        ToTensor,
        ToTorchImage,
    )

    if pipeline not in PIPELINES:
        raise DataError(f"unknown pipeline {pipeline!r}; known: {', '.join(PIPELINES)}")
    if info.layout == "gray":
        if pipeline != "plain":
            raise DataError(f"grayscale data has only the 'plain' pipeline, not {pipeline!r}")
        return [NDArrayDecoder(), ToTensor(), *_to_device(options.device)]
    if pipeline in ("plain", "pad_crop_flip") and info.shape is None:
        raise DataError(
            f"{info.source} images differ in size: use the resized_crop_flip/center_crop pipelines"
        )
    side = options.resolution or DEFAULT_RESOLUTION
    decode = {
        "plain": lambda: [SimpleRGBImageDecoder()],
        "pad_crop_flip": lambda: [
            SimpleRGBImageDecoder(),
            RandomHorizontalFlip(),
            RandomTranslate(padding=4),
        ],
        "resized_crop_flip": lambda: [
            RandomResizedCropRGBImageDecoder((side, side)),
            RandomHorizontalFlip(),
        ],
        "center_crop": lambda: [CenterCropRGBImageDecoder((side, side), ratio=CENTER_CROP_RATIO)],
    }[pipeline]()
    return [
        *decode,
        ToTensor(),
        *_to_device(options.device),
        ToTorchImage(channels_last=options.channels_last),
    ]


def _to_device(device: torch.device) -> list:
    from scale_lth.data.ffcv_api import ToDevice

    return [ToDevice(device, non_blocking=True)] if device.type == "cuda" else []


def _label_pipeline(device: torch.device) -> list:
    from scale_lth.data.ffcv_api import IntDecoder, Squeeze, ToTensor

    return [IntDecoder(), ToTensor(), Squeeze(1), *_to_device(device)]


def default_pipeline(info: DataInfo, training: bool) -> str:
    if info.augmentation == "none":
        return "plain"
    if info.augmentation == "resized_crop_flip":
        return "resized_crop_flip" if training else "center_crop"
    return info.augmentation if training else "plain"


def _batches(
    folder: Path, split: str, batch_size: int, training: bool, options: LoaderOptions, **arguments
) -> Batches:
    from scale_lth.data.ffcv_api import Loader

    info = DataInfo.load(folder)
    if batch_size < 1:
        raise DataError(f"the per-worker batch size must be at least 1, got {batch_size}")
    pipeline = options.pipeline or default_pipeline(info, training)
    loader = Loader(
        str(info.beton(folder, split)),
        batch_size=batch_size,
        num_workers=loader_threads(options.threads),
        os_cache=options.os_cache,
        pipelines={
            "image": _image_pipeline(info, pipeline, options),
            "label": _label_pipeline(options.device),
        },
        **arguments,
    )
    return Batches(loader, info, options.device, options.channels_last)


def train_batches(
    folder: str | Path,
    batch_size: int,
    *,
    seed: int,
    distributed: bool = False,
    options: LoaderOptions = LoaderOptions(),
) -> Batches | Held:
    """Shuffled training batches (the last partial batch dropped); this rank's shard when
    ``distributed`` (FFCV's DistributedSampler emulation: disjoint, reshuffled each epoch).
    A split without random augmentation whose float32 tensors fit in ``keep_decoded_bytes``
    is decoded once and kept (``Held``), in the same order."""
    from scale_lth.data.ffcv_api import OrderOption

    folder = Path(folder)
    info = DataInfo.load(folder)
    shuffled = _batches(
        folder,
        "train",
        batch_size,
        True,
        options,
        order=OrderOption.RANDOM,
        distributed=distributed,
        seed=seed,
        drop_last=True,
    )
    count = info.splits.get("train", 0)
    if (options.pipeline or default_pipeline(info, True)) != "plain" or not _fits(
        info, count, options
    ):
        return shuffled
    every = _in_order(folder, "train", batch_size, np.arange(count), options)
    return Held(every, batch_size, shuffled=shuffled.loader)


def _in_order(
    folder: Path, split: str, batch_size: int, indices: np.ndarray, options: LoaderOptions
) -> Batches:
    from scale_lth.data.ffcv_api import OrderOption

    return _batches(
        folder,
        split,
        batch_size,
        False,
        options,
        order=OrderOption.SEQUENTIAL,
        indices=indices,
        drop_last=False,
    )


def _fits(info: DataInfo, count: int, options: LoaderOptions) -> bool:
    side = options.resolution or DEFAULT_RESOLUTION
    height, width = info.shape[1:] if info.shape else (side, side)
    return count * info.channels * height * width * 4 <= options.keep_decoded_bytes


def subsample(size: int, count: int | None, seed: int) -> np.ndarray:
    """The indices of ``count`` examples of a split of ``size``, in order: the first ``count``
    of a permutation drawn with ``seed`` (NumPy's PCG64), sorted; every index where ``count``
    is None or not smaller than ``size``."""
    if count is None or count >= size:
        return np.arange(size)
    return np.sort(np.random.default_rng(seed).permutation(size)[:count])


def eval_batches(
    folder: str | Path,
    split: str,
    batch_size: int,
    *,
    rank: int = 0,
    world_size: int = 1,
    options: LoaderOptions = LoaderOptions(),
    examples: int | None = None,
    seed: int = 0,
) -> Batches | Held:
    """Every example of ``split`` in order (or the ``examples`` of ``subsample(..., seed)``),
    each read by exactly one rank; a shard whose float32 tensors fit in ``keep_decoded_bytes``
    is decoded once and kept (``Held``)."""
    folder = Path(folder)
    info = DataInfo.load(folder)
    indices = subsample(info.splits.get(split, 0), examples, seed)[rank::world_size]
    batches = _in_order(folder, split, batch_size, indices, options)
    if _fits(info, len(indices), options):
        return Held(batches, batch_size)
    return batches
