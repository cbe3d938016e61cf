"""Small data sets in the exact on-disk formats users have: MNIST idx, CIFAR-10 pickles, an
ImageNet-style folder of JPEGs (smooth synthetic ones whose pixels are known, or crops of real
photos of varied sizes)."""

import gzip
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

WNIDS = ["n01440764", "n01443537", "n01484850"]


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    content = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)


def write_mnist(root: Path, train: int = 600, test: int = 100) -> dict[str, np.ndarray]:
    """``train`` and ``test`` 28x28 images; images gzipped, labels raw (both occur)."""
    rng = np.random.default_rng(1)
    arrays = {
        "train_images": rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, test, dtype=np.uint8),
    }
    root.mkdir(parents=True)
    write_idx(root / "train-images-idx3-ubyte", arrays["train_images"], compress=True)
    write_idx(root / "train-labels-idx1-ubyte", arrays["train_labels"], compress=False)
    write_idx(root / "t10k-images-idx3-ubyte", arrays["test_images"], compress=True)
    write_idx(root / "t10k-labels-idx1-ubyte", arrays["test_labels"], compress=False)
    return arrays


def write_cifar(root: Path, per_batch: int = 40, test: int = 30) -> dict[str, np.ndarray]:
    """Five data batches of ``per_batch`` images and a test batch, in CIFAR-10's pickle layout."""
    rng = np.random.default_rng(2)
    root.mkdir(parents=True)
    images, labels = [], []
    for name, count in [
        *((f"data_batch_{i}", per_batch) for i in range(1, 6)),
        ("test_batch", test),
    ]:
        hwc = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
        label = rng.integers(0, 10, count).tolist()
        rows = hwc.transpose(0, 3, 1, 2).reshape(count, 3072)  # R plane, G plane, B plane
        with open(root / name, "wb") as file:
            pickle.dump({b"data": rows, b"labels": label, b"batch_label": b"x"}, file)
        images.append(hwc)
        labels.append(np.array(label))
    return {
        "train_images": np.concatenate(images[:5]),
        "train_labels": np.concatenate(labels[:5]),
        "test_images": images[5],
        "test_labels": labels[5],
    }


def write_smooth_imagefolder(root: Path) -> dict[str, list[tuple[np.ndarray, int]]]:
    """ImageNet's layout with three wnid classes of smooth 48x40 JPEGs (decoded pixels kept)."""
    rng = np.random.default_rng(3)
    decoded: dict[str, list[tuple[np.ndarray, int]]] = {"train": [], "val": []}
    for split, per_class in (("train", 4), ("val", 2)):
        for label, wnid in enumerate(WNIDS):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(per_class):
                coarse = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
                image = Image.fromarray(coarse).resize((48, 40), Image.BILINEAR)
                path = folder / f"{wnid}_{i}.JPEG"
                image.save(path, quality=95)
                with Image.open(path) as reread:
                    decoded[split].append((np.asarray(reread.convert("RGB")), label))
    return decoded


def write_photo_imagefolder(root: Path, train: int = 8, val: int = 4) -> None:
    """ImageNet's layout from real photos (scikit-learn's two sample JPEGs): each class holds
    crops of one region of the photos, of sizes from 40 to 160 pixels a side, as JPEGs."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(4)
    for split, per_class in (("train", train), ("val", val)):
        for label, wnid in enumerate(WNIDS):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(per_class):
                photo = photos[(label + i) % len(photos)]
                height, width = rng.integers(40, 161, 2)
                top = rng.integers(0, photo.shape[0] - height)
                left = rng.integers(0, photo.shape[1] - width)
                crop = photo[top : top + height, left : left + width]
                Image.fromarray(crop).save(folder / f"{wnid}_{i}.JPEG", quality=90)
