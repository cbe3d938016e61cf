"""Writing splits as FFCV ``.beton`` files, with the facts loaders need in ``info.json``.

Grayscale sources (MNIST, digits) are stored exactly as ``uint8`` arrays of shape ``1 x H x W``;
colour sources as FFCV RGB images (``raw`` pixels, or JPEG with ffcv-imagenet's knobs).
Each file is written under a temporary name and renamed when complete; ``info.json`` comes
last, so a folder with an ``info.json`` is a finished data set.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scale_lth.data.beton import read_beton
from scale_lth.data.errors import DataError
from scale_lth.data.info import DataInfo, content_digest, info_path
from scale_lth.data.sources import Split

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
STATISTICS_SAMPLE = 5_000


@dataclass(frozen=True)
class ImageOptions:
    """How colour images are stored (ffcv-imagenet's knobs)."""

    write_mode: str = "raw"  # raw, jpg, smart or proportion
    max_resolution: int | None = None
    jpeg_quality: int = 90
    compress_probability: float = 0.5


class GrayAsArray:
    """Presents an ``H x W`` grayscale split as ``(1 x H x W array, label)`` pairs."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        image, label = self.split[index]
        return image[None], label


def channel_statistics(split: Split) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0-255 scale) over up to 5,000 evenly spaced training images."""
    picks = np.linspace(0, len(split) - 1, min(len(split), STATISTICS_SAMPLE)).astype(int)
    pixels = np.stack([split[int(i)][0] for i in picks]).astype(np.float64)
    channels = pixels.reshape(-1, 1) if pixels.ndim == 3 else pixels.reshape(-1, 3)
    std = np.maximum(channels.std(axis=0), 1e-6)
    return channels.mean(axis=0).tolist(), std.tolist()


def stored_shape(betons: list[Path]) -> list[int] | None:
    """``[3, H, W]`` when every stored colour image has that size, else None."""
    sizes = set()
    for path in betons:
        image = read_beton(path).metadata["f0"]
        sizes |= set(zip(image["height"].tolist(), image["width"].tolist(), strict=True))
    if len(sizes) != 1:
        return None
    (height, width) = sizes.pop()
    return [3, height, width]


def image_field(first_image: np.ndarray, options: ImageOptions):
    """The FFCV field images are stored in: the arrays themselves for grayscale images (one
    size), RGB images (JPEG or raw, as ``options`` say) for colour ones."""
    from scale_lth.data.ffcv_api import NDArrayField, RGBImageField

    if first_image.ndim == 2:
        return NDArrayField(np.dtype("uint8"), (1, *first_image.shape))
    return RGBImageField(
        write_mode=options.write_mode,
        max_resolution=options.max_resolution,
        jpeg_quality=options.jpeg_quality,
        compress_probability=options.compress_probability,
    )


def write_beton(split, fields: dict, path: Path, workers: int | None = None) -> None:
    """``split`` as the .beton ``path``: written under a temporary name (removed if the
    writing stops: an error, Ctrl-C), then renamed."""
    from scale_lth.data.ffcv_api import DatasetWriter

    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        writer = DatasetWriter(
            str(temporary), fields, num_workers=workers or len(os.sched_getaffinity(0))
        )
        writer.from_indexed_dataset(split, chunksize=64)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_splits(
    splits: Mapping[str, Split],
    out: Path,
    source: str,
    image_options: ImageOptions = ImageOptions(),
    overwrite: bool = False,
    imagenet_statistics: bool = False,
    augmentation: str = "pad_crop_flip",
    workers: int | None = None,
) -> DataInfo:
    """Write ``out/<split>.beton`` for every split and ``out/info.json``; return the info.

    ``augmentation`` names the training pipeline colour images get by default
    (``pad_crop_flip`` for CIFAR-sized data, ``resized_crop_flip`` for ImageNet-like data).
    """
    from scale_lth.data.ffcv_api import IntField

    names = [*(f"{split}.beton" for split in splits), "info.json"]
    existing = [name for name in names if (out / name).exists()]
    if existing and not overwrite:
        raise DataError(
            f"{out} already holds {', '.join(existing)}; pass --overwrite or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    info_path(out).unlink(missing_ok=True)
    info = describe(splits, source, imagenet_statistics, augmentation)
    first_image, _ = splits["train"][0]
    gray = first_image.ndim == 2
    fields = {"image": image_field(first_image, image_options), "label": IntField()}
    digests = {}
    for name, split in splits.items():
        print(f"Writing the {name} split ({len(split):,} images) to {out}", flush=True)
        path = out / f"{name}.beton"
        write_beton(GrayAsArray(split) if gray else split, fields, path, workers)
        digests[name] = content_digest(path)
    shape = info.shape if gray else stored_shape([out / f"{name}.beton" for name in splits])
    info = dataclasses.replace(info, shape=shape, digests=digests)
    info.save(out)
    return info


def describe(
    splits: Mapping[str, Split],
    source: str,
    imagenet_statistics: bool = False,
    augmentation: str = "pad_crop_flip",
) -> DataInfo:
    """What ``info.json`` will say of ``splits`` once written, but for what only the written
    files tell: a colour source's stored size and the files' digests."""
    first_image, _ = splits["train"][0]
    gray = first_image.ndim == 2
    if imagenet_statistics:
        mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)
    else:
        mean, std = channel_statistics(splits["train"])
    return DataInfo(
        source=source,
        layout="gray" if gray else "rgb",
        num_classes=splits["train"].num_classes,
        shape=[1, *first_image.shape] if gray else None,
        splits={name: len(split) for name, split in splits.items()},
        mean=mean,
        std=std,
        augmentation="none" if gray else augmentation,
    )
