"""An experiment's durations in optimizer steps, converted once, on the driver, from the data's
size and the scaling settings; the workers read plain step counts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scale_lth.config import Config
from scale_lth.config.duration import Duration
from scale_lth.training.schedule import Schedule


def world_size(config: Config) -> int:
    """The ranks that train each run: a group's workers under DDP, one with ``runs``."""
    return 1 if config.scaling.parallelism == "runs" else config.scaling.num_workers


def per_worker_batch(config: Config) -> int:
    return config.data.batch_size // world_size(config)


def iterations_per_epoch(config: Config, train_images: int) -> int:
    """Optimizer steps per epoch: each rank's shard of the training split in whole per-worker
    batches (the loaders drop the last partial batch)."""
    per_rank = math.ceil(train_images / world_size(config))
    return per_rank // per_worker_batch(config) if per_worker_batch(config) else 0


@dataclass(frozen=True)
class Steps:
    per_epoch: int
    schedule: Schedule  # the dense network's (level 0's) steps and learning rates
    rewind: int | None  # the rewind point k (None: ``auto``, chosen once the dense run is known)
    eval_every: int
    checkpoint_every: int  # 0: never
    saved: frozenset[int] = frozenset({0})  # where the dense run saves its weights

    @classmethod
    def of(cls, config: Config, train_images: int) -> Steps:
        per_epoch = iterations_per_epoch(config, train_images)
        training = config.training
        step = config.rewinding.step
        rewind = None if step == "auto" else step.iterations(per_epoch)
        points = [*config.rewinding.candidates, *config.instability.steps]
        saved = {0, *([rewind] if rewind is not None else [])}
        return cls(
            per_epoch=per_epoch,
            schedule=Schedule.of(training, per_epoch),
            rewind=rewind,
            eval_every=training.eval_every.iterations(per_epoch),
            checkpoint_every=training.checkpoint_every.iterations(per_epoch),
            saved=frozenset(saved | {point.iterations(per_epoch) for point in points}),
        )

    def at(self, duration: str) -> int:
        """A start written as a duration (``100it``, ``2ep``), in steps."""
        return Duration.parse(duration).iterations(self.per_epoch)
