"""Making sure an experiment's data folder is written, and readable, before any worker starts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from scale_lth.data import sources
from scale_lth.data.beton import read_beton
from scale_lth.data.errors import DataError
from scale_lth.data.info import INFO_FILE, DataInfo, info_path
from scale_lth.data.writing import describe, write_splits
from scale_lth.locks import exclusive

WRITE_HINTS = {
    "imagenet": "--source imagefolder --root /path/to/imagenet",
    "cifar10": "--source cifar10 --root /path/to/cifar-10-batches-py",
    "mnist": "--source mnist --root /path/to/mnist",
    "synthetic": "--source synthetic --num-classes 10 --image-size 32",
    "digits": "--source digits",
}


def planned_info(folder: Path, dataset: str) -> DataInfo:
    """The folder's DataInfo, or, for scikit-learn's digits not yet written, the one writing
    them will give (its split sizes and shape, for the checks that come before any writing)."""
    if info_path(folder).is_file() or dataset != "digits":
        return ensure_written(folder, dataset)
    return describe(sources.digits(), "digits")


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
    for split in info.splits:
        check_beton(info.beton(folder, split), info.splits[split], info.num_classes, dataset)
    return with_digests(folder, info)


def with_digests(folder: Path, info: DataInfo) -> DataInfo:
    """``info`` with a digest of every split's file: the SHA-256 written with the data, or for
    data an earlier version wrote (none recorded; its folder may be read-only and large) each
    file's size and modification time, which any rewrite changes."""
    if set(info.digests) == set(info.splits):
        return info
    stats = {split: info.beton(folder, split).stat() for split in info.splits}
    digests = {
        split: f"size {stat.st_size}, modified {stat.st_mtime_ns}" for split, stat in stats.items()
    }
    return dataclasses.replace(info, digests=digests)


def check_beton(path: Path, samples: int, classes: int, dataset: str) -> None:
    """The file's header, fields, labels and allocation table are whole and as ``info.json``
    says, without reading its images (nor importing FFCV: scale_lth.data.beton)."""
    hint = WRITE_HINTS[dataset]
    fix = f"write the data again with `scale-lth data write {hint} --out {path.parent} --overwrite`"
    if not path.is_file():
        raise DataError(f"{path}: missing, though {INFO_FILE} lists it; {fix}")
    try:
        beton = read_beton(path)
        table = beton.alloc_table
        complete = (
            len(beton.metadata) == beton.num_samples
            and len(table) > 0
            and int((table["ptr"] + table["size"]).max()) <= path.stat().st_size
        )
    except Exception as error:  # whatever numpy meets in a damaged file
        raise DataError(f"{path}: not a readable .beton ({type(error).__name__}); {fix}") from None
    if not complete:
        raise DataError(f"{path}: truncated .beton (its data ends early); {fix}")
    missing = {"image", "label"} - set(beton.field_names)
    if missing:
        raise DataError(
            f"{path}: has fields {', '.join(beton.field_names)}, lacks "
            f"{', '.join(sorted(missing))}; {fix}"
        )
    if beton.num_samples != samples:
        raise DataError(
            f"{path}: holds {beton.num_samples} examples, {INFO_FILE} says {samples}; {fix}"
        )
    labels = beton.metadata[f"f{beton.field_names.index('label')}"]
    if labels.min() < 0 or labels.max() >= classes:
        raise DataError(
            f"{path}: holds labels {labels.min()} to {labels.max()}, {INFO_FILE} says {classes} "
            f"classes (0 to {classes - 1}); {fix}"
        )
