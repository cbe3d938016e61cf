"""Readers for the data a user already has, as indexable splits of ``(image, label)`` pairs.

Every reader returns ``{split: Split}`` with ``train``, ``val`` and, where the source has one,
``test``. Images are ``uint8`` arrays: ``H x W`` for grayscale sources (MNIST, digits),
``H x W x 3`` for colour ones. As in the LTH paper, MNIST and CIFAR-10 hold 5,000 seeded
training examples out as the validation split (early stopping). ImageNet's own labelled ``val``
set becomes ``test``, and a seeded holdout of its training images the ``val`` split that early
stopping reads (10,000 of ImageNet's 1,281,167, in proportion for smaller folders), so no
reported accuracy is measured on the data that chose the early-stop point.
"""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scale_lth.data.errors import DataError

HELD_OUT = 5_000
SPLIT_SEED = 0
IMAGENET_TRAIN, IMAGENET_HOLDOUT = 1_281_167, 10_000


@dataclass(frozen=True)
class Split:
    """``len(split)`` pairs; ``split[i]`` reads pair ``i`` (lazily for image files)."""

    size: int
    read: Callable[[int], tuple[np.ndarray, int]]
    num_classes: int

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        if not 0 <= index < self.size:
            raise IndexError(index)
        return self.read(index)


def in_memory(images: np.ndarray, labels: np.ndarray, num_classes: int) -> Split:
    return Split(len(labels), lambda i: (images[i], int(labels[i])), num_classes)


def hold_out(
    images: np.ndarray, labels: np.ndarray, count: int, num_classes: int
) -> dict[str, Split]:
    """Split arrays into ``train`` and a seeded random ``val`` of ``count`` examples."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    val, train = np.sort(order[:count]), np.sort(order[count:])
    return {
        "train": in_memory(images[train], labels[train], num_classes),
        "val": in_memory(images[val], labels[val], num_classes),
    }


def digits() -> dict[str, Split]:
    """scikit-learn's 1,797 real 8x8 handwritten digits (values 0-16), split 1257/180/360."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    test, rest = np.sort(order[:360]), order[360:]
    splits = hold_out(images[rest], labels[rest], 180, num_classes=10)
    splits["test"] = in_memory(images[test], labels[test], num_classes=10)
    return splits


def read_idx(path: Path) -> np.ndarray:
    """An MNIST idx file (raw or gzipped) as a uint8 array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        content = file.read()
    if len(content) < 4 or content[:2] != b"\0\0" or content[2] != 0x08:
        raise DataError(f"{path}: not an idx file of unsigned bytes (expected MNIST's format)")
    dims = content[3]
    shape = tuple(int.from_bytes(content[4 + 4 * d : 8 + 4 * d], "big") for d in range(dims))
    data = np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: truncated idx file ({data.size} bytes for shape {shape})")
    return data.reshape(shape)


def find_file(root: Path, stems: Sequence[str]) -> Path:
    for stem in stems:
        for candidate in (root / stem, root / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    raise DataError(f"{root}: no {stems[0]}[.gz]; point --root at the folder of MNIST's idx files")


def mnist(root: Path) -> dict[str, Split]:
    """MNIST's idx files: 55,000 train / 5,000 val (held out of train) / 10,000 test."""
    read = {
        name: read_idx(find_file(root, stems))
        for name, stems in {
            "train_images": ["train-images-idx3-ubyte", "train-images.idx3-ubyte"],
            "train_labels": ["train-labels-idx1-ubyte", "train-labels.idx1-ubyte"],
            "test_images": ["t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"],
            "test_labels": ["t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"],
        }.items()
    }
    held_out = min(HELD_OUT, len(read["train_labels"]) // 10)
    splits = hold_out(read["train_images"], read["train_labels"], held_out, num_classes=10)
    splits["test"] = in_memory(read["test_images"], read["test_labels"], num_classes=10)
    return splits


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(
            f"{path.parent}: no {path.name}; point --root at CIFAR-10's cifar-10-batches-py folder"
        )
    with open(path, "rb") as file:
        batch = pickle.load(file, encoding="bytes")
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return images.transpose(0, 2, 3, 1).copy(), np.asarray(batch[b"labels"], dtype=np.int64)


def cifar10(root: Path) -> dict[str, Split]:
    """CIFAR-10's python batches: 45,000 train / 5,000 val (held out of train) / 10,000 test."""
    parts = [_cifar_batch(root / f"data_batch_{i}") for i in range(1, 6)]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    held_out = min(HELD_OUT, len(labels) // 10)
    splits = hold_out(images, labels, held_out, num_classes=10)
    test_images, test_labels = _cifar_batch(root / "test_batch")
    splits["test"] = in_memory(test_images, test_labels, num_classes=10)
    return splits


IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".webp"}


def _image_files(folder: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [label] * len(found)
    return files, labels


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def default_holdout(train_images: int) -> int:
    """ImageNet's 10,000 held-out training images, in proportion for a smaller folder (at least
    one, and one fewer than there are)."""
    return min(max(1, round(train_images * IMAGENET_HOLDOUT / IMAGENET_TRAIN)), train_images - 1)


def imagefolder(root: Path, holdout: int | None = None) -> dict[str, Split]:
    """ImageNet's layout: ``train/<class>/*.JPEG`` and ``val/<class>/*.JPEG``; classes sorted.

    ``holdout`` seeded training images (None: ``default_holdout``) become ``val`` and the
    folder's ``val/`` becomes ``test``; with ``holdout=0`` the splits are ``train`` and ``val``
    as on disk, and that val doubles as the test split."""
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DataError(
                f"{root}: no {split}/ folder; expected train/<class>/*.JPEG and val/<class>/*.JPEG"
            )
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{root / 'train'}: no class folders")
    unknown = sorted(
        p.name for p in (root / "val").iterdir() if p.is_dir() and p.name not in classes
    )
    if unknown:
        raise DataError(
            f"{root / 'val'}: class folders not in train/: {', '.join(unknown[:5])}; every val "
            "class needs a train/ folder of the same name (fix the names or remove them)"
        )
    found = {}
    for split in ("train", "val"):
        files, labels = _image_files(root / split, classes)
        if not files:
            raise DataError(f"{root / split}: no image files ({', '.join(IMAGE_SUFFIXES)})")
        found[split] = (files, labels)
    train_files, train_labels = found["train"]
    count = default_holdout(len(train_files)) if holdout is None else holdout
    if not 0 <= count < len(train_files):
        raise DataError(
            f"--holdout {count}: it must be from 0 to {len(train_files) - 1}, the training "
            f"images less one ({root / 'train'} has {len(train_files)})"
        )
    if count:
        order = np.random.default_rng(SPLIT_SEED).permutation(len(train_files))
        held, kept = np.sort(order[:count]), np.sort(order[count:])
        found = {
            "train": ([train_files[i] for i in kept], [train_labels[i] for i in kept]),
            "val": ([train_files[i] for i in held], [train_labels[i] for i in held]),
            "test": found["val"],
        }
    return {
        split: Split(len(files), _file_reader(files, labels), len(classes))
        for split, (files, labels) in found.items()
    }


def _file_reader(files: list[Path], labels: list[int]) -> Callable[[int], tuple[np.ndarray, int]]:
    return lambda i: (_read_rgb(files[i]), labels[i])


def synthetic(
    num_classes: int = 10,
    image_size: int = 32,
    sizes: tuple[int, int, int] = (2_000, 500, 500),
    seed: int = 0,
) -> dict[str, Split]:
    """A learnable colour image set of any size: a smooth per-class pattern plus noise.

    Each image is drawn on demand from ``(seed, split, index)``, so millions cost no memory.
    """
    if num_classes < 2 or image_size < 4:
        raise DataError("synthetic data needs --num-classes >= 2 and --image-size >= 4")
    coarse = np.random.default_rng(seed).uniform(0, 255, size=(num_classes, 4, 4, 3))
    repeat = -(-image_size // 4)
    patterns = np.kron(coarse, np.ones((repeat, repeat, 1)))[:, :image_size, :image_size]

    def reader(split_id: int) -> Callable[[int], tuple[np.ndarray, int]]:
        def read(index: int) -> tuple[np.ndarray, int]:
            rng = np.random.default_rng((seed, split_id, index))
            label = int(rng.integers(num_classes))
            noise = rng.normal(0, 40, size=(image_size, image_size, 3))
            return np.clip(patterns[label] + noise, 0, 255).astype(np.uint8), label

        return read

    names = ("train", "val", "test")
    return {
        name: Split(size, reader(split_id), num_classes)
        for split_id, (name, size) in enumerate(zip(names, sizes, strict=True))
    }
