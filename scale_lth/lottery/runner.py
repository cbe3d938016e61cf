"""The lottery experiment inside the training workers: a resumable walk over what is on disk.

For each replicate, level 0 trains the dense network from its initialisation and saves the
weights at step 0 and at the rewind step k. Level l >= 1 starts as the method registry says
(scale_lth.methods, read by scale_lth.lottery.starts) from what the store keeps, at the
level's exact density. A finished run (one with ``metrics.json``) is never redone; an
interrupted one continues from its latest checkpoint. Step counts come from the driver. The
instability analysis's copies train here like any run (with a data order of their own), and
its path measurements are evaluated here (scale_lth.lottery.instability).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from scale_lth.config import Config
from scale_lth.console import say
from scale_lth.data import DataInfo, LoaderOptions, eval_batches, train_batches
from scale_lth.errors import one_line
from scale_lth.lottery.instability import measure_path
from scale_lth.lottery.job import Job
from scale_lth.lottery.starts import Batches, run_start
from scale_lth.lottery.steps import Steps
from scale_lth.lottery.store import StartStore
from scale_lth.results import Layout, Observer, RunKey
from scale_lth.storage import atomic_torch_save, atomic_write_json
from scale_lth.training.loop import Cadence, RunData, train_run
from scale_lth.training.session import Session
from scale_lth.training.state import Checkpoints


@dataclass
class Runner:
    config: Config
    session: Session
    steps: Steps
    observers: list[Observer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.layout = Layout(self.config.experiment_dir)
        self.info = DataInfo.load(self.config.data_dir)
        self.store = StartStore(self.config, self.info, self.session)
        self._train: dict[int, object] = {}
        self._evaluation: dict[str, object] | None = None
        self._training_evaluation: object | None = None

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

    def evaluation_data(self) -> dict[str, object]:
        """The evaluation loaders, built once per worker and reused."""
        if self._evaluation is None:
            self._evaluation = {
                split: self._in_order(split)
                for split in ("val", "test")
                if split in self.info.splits
            }
        return self._evaluation

    def training_evaluation(self) -> object:
        """The training split in order, for evaluation (the instability analysis), built once."""
        if self._training_evaluation is None:
            self._training_evaluation = self._in_order("train")
        return self._training_evaluation

    def _in_order(self, split: str) -> object:
        return eval_batches(
            self.config.data_dir,
            split,
            self.per_worker_batch(),
            rank=self.session.rank,
            world_size=self.session.world_size,
            options=self.loader_options(training=False),
        )

    def run_data(self, key: RunKey) -> RunData:
        """Loaders built once per worker and reused: the training order of each replicate's
        seed; a copy of the instability analysis reads an order of its own, built for it."""
        seed = self.store.data_seed(key)
        if seed in self._train:
            return RunData(self._train[seed], self.evaluation_data())
        train = self._train_batches(seed)
        if seed == self.store.replicate_seed(key.replicate):
            self._train[seed] = train
        return RunData(train, self.evaluation_data())

    def _train_batches(self, seed: int) -> object:
        return train_batches(
            self.config.data_dir,
            self.per_worker_batch(),
            seed=seed,
            distributed=self.session.world_size > 1,
            options=self.loader_options(training=True),
        )

    def snip_batches(self, replicate: int) -> Batches:
        """The first ``baselines.snip_batches`` training minibatches of epoch 0."""
        train = self.run_data(RunKey(replicate, 0)).train
        train.epoch = 0
        inputs, targets = [], []
        for images, labels in train:
            inputs.append(images)
            targets.append(labels)
            if len(inputs) == self.config.baselines.snip_batches:
                break
        return inputs, targets

    # ----- runs -----------------------------------------------------------------------
    def seed_training(self, key: RunKey) -> None:
        """The run's own random streams (dropout, on CPU and every GPU), one per rank; a resumed
        run replaces them with its checkpoint's."""
        torch.manual_seed(self.store.derived_seed(key, f"/training/rank{self.session.rank}"))

    def run(self, key: RunKey) -> None:
        """Train (or measure) ``key`` unless it is finished; an error it ends with is kept in
        its folder for `scale-lth status` (and cleared when it starts again)."""
        if self.layout.is_done(key):
            return
        failure = self.layout.failure_path(key)
        failure.unlink(missing_ok=True)
        try:
            self._run(key)
        except Exception as error:
            if self.session.is_chief:
                atomic_write_json(failure, {"error": one_line(error), "time": time.time()})
            raise

    def _run(self, key: RunKey) -> None:
        if key.measures_path:
            self.measure_path(key)
            return
        data = self.run_data(key)
        if len(data.train) != self.steps.per_epoch:
            raise RuntimeError(
                f"the loader gives {len(data.train)} batches an epoch, the driver counted "
                f"{self.steps.per_epoch}"
            )
        start = run_start(self.store, key, self.steps, lambda: self.snip_batches(key.replicate))
        model = self.store.network(start.weights)
        total = start.schedule.total
        density = 1.0 if start.mask is None else start.mask.density
        for observer in self.observers:
            observer.run_started(key, density, total)
        self.seed_training(key)
        trained_from = time.time()
        result = train_run(
            model,
            data,
            self.config.training,
            self.session,
            schedule=start.schedule,
            run_dir=self.layout.run_dir(key),
            mask=start.mask,
            start_step=start.step,
            cadence=Cadence(
                self.steps.eval_every,
                self.steps.checkpoint_every,
                self.store.save_points(key, self.steps),
            ),
            on_eval=lambda row: [observer.evaluated(key, row) for observer in self.observers],
            heartbeat=self.layout.heartbeat_path(key),
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
                "compute_factor": start.compute_factor,
                "world_size": self.session.world_size,
                "per_worker_batch": self.per_worker_batch(),
                "resumed_from": result.resumed_from,
                "seconds": result.seconds,
                "trained_from": trained_from,  # wall-clock (Unix) times around the steps
                "trained_until": time.time(),
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

    def measure_path(self, key: RunKey) -> None:
        """The errors along the straight path between ``key``'s two copies."""
        points = self.config.instability.points
        splits = {"train": self.training_evaluation(), **self.evaluation_data()}
        if self.session.is_chief:
            say(f"[{key}] measuring {points} points between the copies on {', '.join(splits)}")
        model = self.store.network().to(self.session.device)
        measure_path(self.layout, key, model, splits, points, self.session)

    def train(self, keys: Iterable[RunKey]) -> None:
        """Train ``keys`` in order; the evaluation loaders are built (FFCV compiles its code)
        before the first key is asked for, while other slots' first runs may still be its
        inputs, not after."""
        self.evaluation_data()
        for key in keys:
            self.run(key)
        for observer in self.observers:
            observer.finished()

    def execute(self, job: Job) -> None:
        """Every run of ``job`` in its order, in this process (tests and debugging)."""
        self.train(job.keys())
