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
    digests: dict[str, str] = field(default_factory=dict)  # split -> SHA-256 of its .beton

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


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 4 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while piece := file.read(4 << 20):
            digest.update(piece)
    return digest.hexdigest()
