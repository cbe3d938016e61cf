"""Small data sets in the exact on-disk formats users have: MNIST idx, CIFAR-10 pickles,
an ImageNet-style folder of JPEGs."""

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


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


@pytest.fixture
def mnist_root(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """600 training and 100 test 28x28 images; images gzipped, labels raw (both occur)."""
    rng = np.random.default_rng(1)
    arrays = {
        "train_images": rng.integers(0, 256, (600, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, 600, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (100, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, 100, dtype=np.uint8),
    }
    root = tmp_path / "mnist"
    root.mkdir()
    write_idx(root / "train-images-idx3-ubyte", arrays["train_images"], compress=True)
    write_idx(root / "train-labels-idx1-ubyte", arrays["train_labels"], compress=False)
    write_idx(root / "t10k-images-idx3-ubyte", arrays["test_images"], compress=True)
    write_idx(root / "t10k-labels-idx1-ubyte", arrays["test_labels"], compress=False)
    return root, arrays


@pytest.fixture
def cifar_root(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """Five data batches of 40 images and a test batch of 30, in CIFAR-10's pickle layout."""
    rng = np.random.default_rng(2)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    images, labels = [], []
    for name, count in [*((f"data_batch_{i}", 40) for i in range(1, 6)), ("test_batch", 30)]:
        hwc = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
        label = rng.integers(0, 10, count).tolist()
        rows = hwc.transpose(0, 3, 1, 2).reshape(count, 3072)  # R plane, G plane, B plane
        with open(root / name, "wb") as file:
            pickle.dump({b"data": rows, b"labels": label, b"batch_label": b"x"}, file)
        images.append(hwc)
        labels.append(np.array(label))
    arrays = {
        "train_images": np.concatenate(images[:5]),
        "train_labels": np.concatenate(labels[:5]),
        "test_images": images[5],
        "test_labels": labels[5],
    }
    return root, arrays


@pytest.fixture
def imagefolder_root(tmp_path) -> tuple[Path, dict[str, list[tuple[np.ndarray, int]]]]:
    """ImageNet's layout with three wnid classes of smooth 48x40 JPEGs (decoded pixels kept)."""
    rng = np.random.default_rng(3)
    root = tmp_path / "imagenet"
    decoded: dict[str, list[tuple[np.ndarray, int]]] = {"train": [], "val": []}
    wnids = ["n01440764", "n01443537", "n01484850"]
    for split, per_class in (("train", 4), ("val", 2)):
        for label, wnid in enumerate(wnids):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(per_class):
                coarse = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
                image = Image.fromarray(coarse).resize((48, 40), Image.BILINEAR)
                path = folder / f"{wnid}_{i}.JPEG"
                image.save(path, quality=95)
                with Image.open(path) as reread:
                    decoded[split].append((np.asarray(reread.convert("RGB")), label))
    return root, decoded
