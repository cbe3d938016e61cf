"""Where a training worker runs: its rank, the number of ranks, its device, and the machine of
every rank.

A plain ``Session`` is a single process with no process group (in-process runs, tests); the
orchestration layer makes one for each Ray Train worker (Ray owns the process group: gloo on
CPU, NCCL on GPU; scale_lth.orchestration.ray_train.ray_session).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Place:
    """Where one rank runs: its machine's hostname, its node's cluster address (empty for a
    process outside a cluster) and the data folder it reads (empty: ``data.path``; else a copy
    on its node, scale_lth.data.staging)."""

    host: str
    address: str = ""
    data: str = ""

    @classmethod
    def here(cls, address: str = "", data: str = "") -> Place:
        return cls(socket.gethostname(), address, data)


@dataclass
class Session:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    places: tuple[Place, ...] = ()  # one per rank, in rank order; empty: this process's

    def ranks(self) -> list[dict[str, int | str]]:
        """Each rank's number, host, address and data folder, as ``metrics.json`` records
        them."""
        places = self.places or (Place.here(),) * self.world_size
        return [
            {"rank": rank, "host": place.host, "address": place.address, "data": place.data}
            for rank, place in enumerate(places)
        ]

    def data_folder(self, default: Path) -> Path:
        """The folder this rank reads its data from: its node's copy where one was made, else
        ``default``."""
        own = self.places[self.rank].data if self.places else ""
        return Path(own) if own else default

    @property
    def is_chief(self) -> bool:
        """Rank 0: the worker that writes results, logs and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            dist.barrier()
