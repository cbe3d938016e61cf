"""Small data sets in the exact on-disk formats users have (see tests/formats.py)."""

from pathlib import Path

import numpy as np
import pytest

from tests.formats import write_cifar, write_mnist, write_smooth_imagefolder


@pytest.fixture
def mnist_root(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """600 training and 100 test 28x28 images."""
    root = tmp_path / "mnist"
    return root, write_mnist(root)


@pytest.fixture
def cifar_root(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """Five data batches of 40 images and a test batch of 30."""
    root = tmp_path / "cifar-10-batches-py"
    return root, write_cifar(root)


@pytest.fixture
def imagefolder_root(tmp_path) -> tuple[Path, dict[str, list[tuple[np.ndarray, int]]]]:
    """Three wnid classes of smooth 48x40 JPEGs (decoded pixels kept)."""
    root = tmp_path / "imagenet"
    return root, write_smooth_imagefolder(root)
