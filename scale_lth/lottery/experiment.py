"""The lottery experiment inside the training workers: a resumable walk over what is on disk.

For each replicate, level 0 trains the dense network from its initialisation and saves the
weights at step 0 and at the rewind step k. Level l prunes level l-1's trained weights, rewinds
the survivors to step k and trains from k to the end. After each level's ticket come the
configured baselines at its exact density. A finished run (one with ``metrics.json``) is never
redone; an interrupted one continues from its latest checkpoint. Masks are chosen once, by
rank 0, and read back by every rank.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from scale_lth.config import Config
from scale_lth.console import say
from scale_lth.data import DataInfo, LoaderOptions, eval_batches, train_batches
from scale_lth.lottery.branches import BRANCHES, Start
from scale_lth.lottery.network import build_network, layer_rates, pruned_names
from scale_lth.lottery.pruning import prune_level
from scale_lth.pruning import Mask
from scale_lth.results import MAIN, Layout, Observer, RunKey
from scale_lth.storage import atomic_torch_save, load_torch
from scale_lth.training.loop import RunData, train_run
from scale_lth.training.session import Session
from scale_lth.training.state import Checkpoints


@dataclass(frozen=True)
class Job:
    """Which runs an invocation asks for; the experiment skips those already finished."""

    replicates: Sequence[int]
    levels: Sequence[int]
    branches: Sequence[str] = ()
    trunk: bool = True  # train the tickets (False: only branches off an existing trunk)

    def keys(self) -> list[RunKey]:
        keys = []
        for replicate in self.replicates:
            for level in self.levels:
                if self.trunk:
                    keys.append(RunKey(replicate, level))
                if level > 0:
                    keys += [RunKey(replicate, level, branch) for branch in self.branches]
        return keys


@dataclass
class Experiment:
    config: Config
    session: Session
    observers: list[Observer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.layout = Layout(self.config.experiment_dir)
        self.info = DataInfo.load(self.config.data_dir)
        self._train: dict[int, object] = {}
        self._evaluation: dict[str, object] | None = None
        self._probe = self.network()

    # ----- data -------------------------------------------------------------------------
    def loader_options(self, training: bool) -> LoaderOptions:
        data = self.config.data
        return LoaderOptions(
            device=self.session.device,
            threads=min(data.loader_workers, self.config.scaling.cpus_per_worker),
            resolution=data.resolution if training else data.eval_resolution,
            channels_last=self.config.training.channels_last,
            os_cache=data.os_cache,
        )

    def per_worker_batch(self) -> int:
        return max(1, self.config.data.batch_size // self.session.world_size)

    def run_data(self, replicate: int) -> RunData:
        """Loaders built once per worker (per replicate seed for training) and reused."""
        seed = self.replicate_seed(replicate)
        if seed not in self._train:
            self._train[seed] = train_batches(
                self.config.data_dir,
                self.per_worker_batch(),
                seed=seed,
                distributed=self.session.world_size > 1,
                options=self.loader_options(training=True),
            )
        if self._evaluation is None:
            self._evaluation = {
                split: eval_batches(
                    self.config.data_dir,
                    split,
                    self.per_worker_batch(),
                    rank=self.session.rank,
                    world_size=self.session.world_size,
                    options=self.loader_options(training=False),
                )
                for split in ("val", "test")
                if split in self.info.splits
            }
        return RunData(self._train[seed], self._evaluation)

    def iterations_per_epoch(self) -> int:
        return len(self.run_data(0).train)

    def rewind_step(self) -> int:
        return self.config.rewinding.step.iterations(self.iterations_per_epoch())

    def snip_batches(self, replicate: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The first ``baselines.snip_batches`` training minibatches of epoch 0."""
        train = self.run_data(replicate).train
        train.epoch = 0
        inputs, targets = [], []
        for images, labels in train:
            inputs.append(images)
            targets.append(labels)
            if len(inputs) == self.config.baselines.snip_batches:
                break
        return inputs, targets

    # ----- weights and masks ----------------------------------------------------------
    def replicate_seed(self, replicate: int) -> int:
        return self.config.seed + replicate

    def derived_seed(self, key: RunKey, purpose: str = "") -> int:
        """A seed of its own for each (replicate, level, branch) and purpose."""
        text = f"{self.replicate_seed(key.replicate)}/{key.level}/{key.branch}{purpose}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")

    def seed_training(self, key: RunKey) -> None:
        """The run's own random streams (dropout, on CPU and every GPU), one per rank; a resumed
        run replaces them with its checkpoint's."""
        torch.manual_seed(self.derived_seed(key, f"/training/rank{self.session.rank}"))

    def network(self, weights: dict[str, torch.Tensor] | None = None, seed: int = 0) -> nn.Module:
        model = build_network(self.config, self.info, seed)
        if weights is not None:
            model.load_state_dict(weights)
        return model

    def fresh_weights(self, seed: int) -> dict[str, torch.Tensor]:
        return self.network(seed=seed).state_dict()

    def init_weights(self, replicate: int) -> dict[str, torch.Tensor]:
        return _load_weights(self.layout.init_path(replicate))

    def rewind_point(self, replicate: int) -> tuple[dict[str, torch.Tensor], int]:
        saved = load_torch(self.layout.rewind_path(replicate))
        return saved["model"], saved["step"]

    def shared_mask(self, key: RunKey, choose: Callable[[], Mask]) -> Mask:
        """The run's mask: chosen by rank 0 the first time, read from disk by every rank."""
        path = self.layout.mask_path(key)
        if self.session.is_chief and not path.is_file():
            say(f"[{key}] choosing the mask")
            choose().save(path)
        self.session.barrier()
        return Mask.load(path)

    def ticket_mask(self, key: RunKey) -> Mask:
        """The winning ticket's mask at ``key.level`` (>= 1)."""
        ticket = RunKey(key.replicate, key.level)
        previous = RunKey(key.replicate, key.level - 1)
        # Every rank takes part in each shared_mask (it holds a barrier): resolve the previous
        # level's mask here, never inside ``choose``, which only rank 0 calls.
        previous_mask = self.ticket_mask(previous) if key.level > 1 else None

        def choose() -> Mask:
            return prune_level(
                _load_weights(self.layout.final_path(previous)),
                pruned_names(self.config, self._probe),
                layer_rates(self.config, self._probe),
                self.config.pruning.fraction,
                previous_mask,
            )

        return self.shared_mask(ticket, choose)

    def ticket_start(self, key: RunKey) -> Start:
        if key.level == 0:
            return Start(self.fresh_weights(self.replicate_seed(key.replicate)), None, 0)
        weights, step = self.rewind_point(key.replicate)
        return Start(weights, self.ticket_mask(key), step)

    # ----- runs -----------------------------------------------------------------------
    def save_points(self, key: RunKey) -> dict[int, Callable[[nn.Module, int], None]]:
        """Level 0's ticket saves its weights at step 0 (init) and at the rewind step k."""
        if key != RunKey(key.replicate, 0):
            return {}
        rewind = self.rewind_step()

        def save(model: nn.Module, step: int) -> None:
            weights = {name: t.detach().cpu() for name, t in model.state_dict().items()}
            if step == 0:
                atomic_torch_save(weights, self.layout.init_path(key.replicate))
            if step == rewind:
                epoch = step // self.iterations_per_epoch()
                record = {"model": weights, "step": step, "epoch": epoch}
                atomic_torch_save(record, self.layout.rewind_path(key.replicate))

        return {0: save, rewind: save}

    def run(self, key: RunKey) -> None:
        if self.layout.is_done(key):
            return
        start = self.ticket_start(key) if key.branch == MAIN else BRANCHES[key.method](self, key)
        model = self.network(start.weights)
        training = self.config.training
        total = training.duration.iterations(self.iterations_per_epoch())
        density = 1.0 if start.mask is None else start.mask.density
        for observer in self.observers:
            observer.run_started(key, density, total)
        self.seed_training(key)
        result = train_run(
            model,
            self.run_data(key.replicate),
            training,
            self.session,
            run_dir=self.layout.run_dir(key),
            mask=start.mask,
            start_step=start.step,
            save_points=self.save_points(key),
            checkpoint_every=training.checkpoint_every.iterations(self.iterations_per_epoch()),
            on_eval=lambda row: [observer.evaluated(key, row) for observer in self.observers],
        )
        if self.session.is_chief:
            kept = start.mask.num_kept if start.mask is not None else None
            metrics = {
                "replicate": key.replicate,
                "level": key.level,
                "branch": key.branch,
                "density": density,
                "kept": kept,
                "start_step": start.step,
                "total_steps": total,
                "world_size": self.session.world_size,
                "per_worker_batch": self.per_worker_batch(),
                "resumed_from": result.resumed_from,
                "seconds": result.seconds,
                **result.history.summary(),
                "history": result.history.rows,
            }
            atomic_torch_save(
                {name: t.detach().cpu() for name, t in model.state_dict().items()},
                self.layout.final_path(key),
            )
            for observer in self.observers:  # before the run is marked done: tracking is complete
                observer.run_finished(key, metrics)
            self.layout.write_metrics(key, metrics)
            Checkpoints(self.layout.run_dir(key)).clear()
        self.session.barrier()

    def execute(self, job: Job) -> None:
        for key in job.keys():
            self.run(key)
        for observer in self.observers:
            observer.finished()


def _load_weights(path) -> dict[str, torch.Tensor]:
    return load_torch(path)
