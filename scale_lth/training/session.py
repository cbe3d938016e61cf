"""Where a training worker runs: its rank, the number of ranks, its device.

A plain ``Session`` is a single process with no process group (in-process runs, tests); the
orchestration layer makes one for each Ray Train worker (Ray owns the process group: gloo on
CPU, NCCL on GPU; scale_lth.orchestration.ray_train.ray_session).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass
class Session:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_chief(self) -> bool:
        """Rank 0: the worker that writes results, logs and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            dist.barrier()
