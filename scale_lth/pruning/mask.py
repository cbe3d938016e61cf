"""Mask: which weights of each prunable tensor survive, by parameter name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from scale_lth.storage import DamagedFile, atomic_torch_save, load_torch


def _count(flags: torch.Tensor) -> int:
    """Surviving weights in a CPU bool tensor (numpy counts bools ~4x faster than torch)."""
    return int(np.count_nonzero(flags.numpy()))


class Mask(Mapping[str, torch.Tensor]):
    """An immutable mapping ``parameter name -> bool tensor`` (True: the weight survives)."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self._tensors = {
            name: tensor.detach().to(device="cpu", dtype=torch.bool)
            for name, tensor in tensors.items()
        }

    @classmethod
    def ones_like(cls, weights: Mapping[str, torch.Tensor]) -> Mask:
        """The dense mask: every weight survives."""
        return cls({name: torch.ones(w.shape, dtype=torch.bool) for name, w in weights.items()})

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    @property
    def num_kept(self) -> int:
        return sum(_count(t) for t in self._tensors.values())

    @property
    def num_total(self) -> int:
        return sum(t.numel() for t in self._tensors.values())

    @property
    def density(self) -> float:
        """Fraction of the masked weights that survive."""
        return self.num_kept / self.num_total

    def layer_kept(self) -> dict[str, int]:
        return {name: _count(t) for name, t in self._tensors.items()}

    def layer_densities(self) -> dict[str, float]:
        return {name: _count(t) / t.numel() for name, t in self._tensors.items()}

    def validate(self, parameters: Mapping[str, torch.Tensor]) -> None:
        """Raise ValueError unless every masked name is a parameter of the same shape."""
        for name, tensor in self._tensors.items():
            if name not in parameters:
                raise ValueError(f"mask names '{name}', which the model does not have")
            if tuple(parameters[name].shape) != tuple(tensor.shape):
                raise ValueError(
                    f"mask for '{name}' has shape {tuple(tensor.shape)}, "
                    f"the model's is {tuple(parameters[name].shape)}"
                )

    def packed(self) -> dict[str, dict]:
        """The mask bit-packed (one bit per weight): each tensor's shape and bits."""
        return {
            name: {"shape": list(t.shape), "bits": torch.from_numpy(np.packbits(t.numpy()))}
            for name, t in self._tensors.items()
        }

    @classmethod
    def unpacked(cls, record: Mapping[str, dict]) -> Mask:
        """The mask ``packed`` gave; ValueError for anything else (a bit array of another
        length, missing fields), never padded or cut to fit."""
        try:
            return cls({name: _unpacked(entry) for name, entry in record.items()})
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a packed mask: {error}") from None

    def save(self, path: str | Path) -> None:
        """Write the mask bit-packed, atomically."""
        atomic_torch_save(self.packed(), Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Mask:
        """A mask ``save`` wrote; any other content is a damaged file."""
        try:
            return cls.unpacked(load_torch(Path(path)))
        except ValueError:
            raise DamagedFile(Path(path)) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mask):
            return NotImplemented
        return self.keys() == other.keys() and all(
            torch.equal(self[name], other[name]) for name in self
        )

    def __repr__(self) -> str:
        return f"Mask({len(self)} tensors, {self.num_kept}/{self.num_total} kept)"


def _unpacked(entry: dict) -> torch.Tensor:
    """One tensor's bits, unpacked: exactly one bit per weight of its shape."""
    shape = [int(size) for size in entry["shape"]]
    bits = entry["bits"]
    count = int(np.prod(shape))
    if bits.dtype != torch.uint8 or bits.dim() != 1 or bits.numel() != -(-count // 8):
        raise ValueError(f"{bits.numel()} bytes of bits for {count} weights")
    return torch.from_numpy(np.unpackbits(bits.numpy(), count=count).astype(bool)).reshape(shape)
