"""Where a training worker runs: its rank, the number of ranks, its device.

``RaySession`` is the real one inside Ray Train's ``TorchTrainer`` (Ray owns the process
group: gloo on CPU, NCCL on GPU). The base ``Session`` is a single process with no process
group, for tests and debugging.
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


class RaySession(Session):
    """A Ray Train worker (inside ``TorchTrainer``'s ``train_loop_per_worker``)."""

    def __init__(self) -> None:
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        super().__init__(
            context.get_world_rank(), context.get_world_size(), ray.train.torch.get_device()
        )
