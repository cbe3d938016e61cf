"""Making sure an experiment's data folder is written before any worker starts."""

from __future__ import annotations

from pathlib import Path

from scale_lth.data import sources
from scale_lth.data.errors import DataError
from scale_lth.data.info import DataInfo, info_path
from scale_lth.data.writing import write_splits
from scale_lth.storage import exclusive

WRITE_HINTS = {
    "imagenet": "--source imagefolder --root /path/to/imagenet",
    "cifar10": "--source cifar10 --root /path/to/cifar-10-batches-py",
    "mnist": "--source mnist --root /path/to/mnist",
    "synthetic": "--source synthetic --num-classes 10 --image-size 32",
}


def ensure_written(folder: Path, dataset: str) -> DataInfo:
    """The folder's DataInfo; scikit-learn's digits (shipped with a package) are written on
    first use, every other data set must have been written by ``scale-lth data write``."""
    if not info_path(folder).is_file():
        if dataset != "digits":
            raise DataError(
                f"{folder}: no {dataset} data there; write it first with "
                f"`scale-lth data write {WRITE_HINTS[dataset]} --out {folder}`"
            )
        with exclusive(folder.with_name(f".{folder.name}.lock")):  # sweep tasks start together
            if not info_path(folder).is_file():
                print(f"Writing scikit-learn's digits to {folder} (first use)", flush=True)
                write_splits(sources.digits(), folder, source="digits", overwrite=True)
    info = DataInfo.load(folder)
    if info.source != dataset:
        raise DataError(
            f"{folder} holds {info.source} data but the config says data.dataset={dataset}; "
            "fix data.dataset or data.path"
        )
    return info
