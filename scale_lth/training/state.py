"""A run's resumable training state: everything needed to continue it bit for bit.

Checkpoints live in the run's folder as ``resume-<step>/``, each holding ``state.pt`` (model,
optimizer, scheduler, grad scaler, history so far; written by rank 0) and ``rng_<rank>.pt``
(each rank's random number generators). Every rank writes its part, then after a barrier rank 0
points ``resume.json`` at the new folder (an atomic rename) and removes older ones, so a
reader never sees a half-written checkpoint or a mix of steps. The pointer also records the
world size the run was trained with: a checkpoint holds one random state per rank, so a run is
only ever resumed with that same number of ranks.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy._core.multiarray import _reconstruct

from scale_lth.storage import atomic_torch_save, atomic_write_json, load_json, load_torch

# Checkpoints of an earlier version kept numpy's generator state as an array; reading them needs
# numpy's array types, which rebuild data and call nothing a file names.
NUMPY_ARRAYS = (np.ndarray, np.dtype, type(np.dtype(np.uint32)), _reconstruct)


def capture_rng() -> dict[str, Any]:
    """Every random number generator's state, as tensors and plain values."""
    state = np.random.get_state(legacy=True)
    assert isinstance(state, tuple)  # the legacy form is a tuple
    kind, keys, position, has_gauss, cached = state
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "python": random.getstate(),
    }


def restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys
    np.random.set_state((kind, keys.astype(np.uint32), position, has_gauss, cached))
    random.setstate(states["python"])


@dataclass
class TrainingState:
    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any] | None
    history: list[dict[str, float]]
    seconds: float  # time spent in training and evaluation steps so far
    world_size: int = 1  # the ranks that trained it (each wrote its random state)
    # the training loss summed since the last evaluation, and its step count (the next row's
    # train_loss averages over them, across a resumption too)
    loss_sum: torch.Tensor | None = None
    loss_count: int = 0

    def write(self, folder: Path, rank: int) -> None:
        """Write this rank's share of the checkpoint into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(capture_rng(), folder / f"rng_{rank}.pt")
        if rank == 0:
            fields = {key: getattr(self, key) for key in self.__dataclass_fields__}
            atomic_torch_save(fields, folder / "state.pt")

    @classmethod
    def read(cls, folder: Path, rank: int) -> TrainingState:
        """The state in ``folder``; restores this rank's random number generators."""
        state = cls(**load_torch(folder / "state.pt"))
        rng = folder / f"rng_{rank}.pt"
        if rng.is_file():
            restore_rng(load_torch(rng, allow=NUMPY_ARRAYS))
        return state


class Checkpoints:
    """The resumable checkpoints of one run, in its folder."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.pointer = self.run_dir / "resume.json"

    def folder(self, step: int) -> Path:
        return self.run_dir / f"resume-{step:09d}"

    def publish(self, step: int, world_size: int) -> None:
        """Make step's folder the latest (rank 0, once every rank has written its part)."""
        atomic_write_json(self.pointer, {"step": step, "world_size": world_size})
        self._remove_all_but(self.folder(step))  # only once the pointer is durable

    def _record(self) -> dict[str, int] | None:
        return load_json(self.pointer) if self.pointer.is_file() else None

    def latest(self) -> Path | None:
        record = self._record()
        return self.folder(record["step"]) if record is not None else None

    def world_size(self) -> int | None:
        """The world size of the latest checkpoint (none: no checkpoint)."""
        record = self._record()
        return record.get("world_size", 1) if record is not None else None

    def clear(self) -> None:
        """Drop every checkpoint (the run is finished)."""
        self.pointer.unlink(missing_ok=True)
        self._remove_all_but(None)

    def _remove_all_but(self, keep: Path | None) -> None:
        for folder in self.run_dir.glob("resume-*"):
            if folder != keep:
                shutil.rmtree(folder, ignore_errors=True)
