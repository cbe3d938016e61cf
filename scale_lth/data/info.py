"""``info.json``: what a data folder holds, so loaders and models need no other description."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from scale_lth.data.errors import DataError
from scale_lth.storage import atomic_write

INFO_FILE = "info.json"


def info_path(folder: Path) -> Path:
    return Path(folder) / INFO_FILE


@dataclass(frozen=True)
class DataInfo:
    source: str
    layout: str  # "gray": uint8 arrays 1 x H x W; "rgb": FFCV RGB images
    num_classes: int
    shape: list[int] | None  # C, H, W when every image has it; None for ImageNet-like data
    splits: dict[str, int]  # split name -> number of images
    mean: list[float]  # per channel, 0-255 scale
    std: list[float]
    augmentation: str  # default training pipeline: none, pad_crop_flip or resized_crop_flip
    digests: dict[str, str] = field(default_factory=dict)  # split -> content_digest of its .beton

    @property
    def channels(self) -> int:
        return 1 if self.layout == "gray" else 3

    def save(self, folder: Path) -> None:
        atomic_write(info_path(folder), json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> DataInfo:
        path = info_path(folder)
        if not path.is_file():
            raise DataError(
                f"{folder}: no data written there (no {INFO_FILE}); "
                "write it first with `scale-lth data write --source ... --out "
                f"{folder}`"
            )
        try:
            return cls(**json.loads(path.read_text()))
        except (TypeError, ValueError):  # not JSON, or not the fields scale-lth writes
            raise DataError(
                f"{path}: not a data description scale-lth wrote; write the data again with "
                f"`scale-lth data write ... --out {folder} --overwrite`"
            ) from None

    def identity(self) -> dict:
        """What the data is, for an experiment's identity: its source, split sizes and the
        content digest of every file."""
        return {"source": self.source, "splits": self.splits, "digests": self.digests}

    def beton(self, folder: Path, split: str) -> Path:
        if split not in self.splits:
            raise DataError(f"{folder}: has no {split} split (it has {', '.join(self.splits)})")
        return Path(folder) / f"{split}.beton"


# FFCV fields whose metadata holds where their bytes lie in the file: the metadata's field
# naming that offset (None: the metadata is the offset alone)
POINTER_FIELDS = {
    "NDArrayField": None,
    "RGBImageField": "data_ptr",
    "BytesField": "ptr",
    "JSONField": "ptr",
}


def content_digest(path: Path) -> str:
    """The SHA-256 of what a .beton holds, sample by sample in index order: each field's
    metadata but its file offsets, then each sample's data bytes. FFCV's parallel writers lay
    the samples out in whatever order they finish, so two writings of the same data differ in
    their bytes but not in this digest."""
    import numpy as np
    from numpy.lib.recfunctions import repack_fields

    from scale_lth.data.beton import read_beton

    beton = read_beton(path)
    digest = hashlib.sha256()
    for index, kind in enumerate(beton.field_kinds):
        column = beton.metadata[f"f{index}"]
        if kind in POINTER_FIELDS:
            pointer = POINTER_FIELDS[kind]
            if pointer is None:
                continue
            kept = [name for name in column.dtype.names or () if name != pointer]
            column = repack_fields(column[kept])
        digest.update(np.ascontiguousarray(column).tobytes())
    table = np.sort(beton.alloc_table, order=["sample_id", "ptr"])
    data = np.memmap(path, dtype=np.uint8, mode="r")
    for ptr, size in zip(table["ptr"].tolist(), table["size"].tolist(), strict=True):
        digest.update(data[ptr : ptr + size].tobytes())
    return digest.hexdigest()
