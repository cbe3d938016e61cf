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
from functools import partial

import torch

from scale_lth.config import Config
from scale_lth.console import say
from scale_lth.data import DataInfo
from scale_lth.errors import one_line
from scale_lth.lottery.instability import measure_path
from scale_lth.lottery.job import Job
from scale_lth.lottery.starts import RunStart, run_start
from scale_lth.lottery.steps import Steps
from scale_lth.lottery.store import StartStore
from scale_lth.lottery.worker_data import WorkerData
from scale_lth.results import Layout, Observer, RunKey
from scale_lth.storage import atomic_torch_save, atomic_write_json
from scale_lth.training.loop import Cadence, RunData, RunResult, train_run
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
        folder = self.session.data_folder(self.config.data_dir)
        info = DataInfo.load(folder)
        self.store = StartStore(self.config, info, self.session)
        self.data = WorkerData(self.config, folder, info, self.session)

    def run_data(self, key: RunKey) -> RunData:
        """What ``key`` trains on: its replicate's data order (shared by the replicate's runs),
        or an instability copy's own."""
        seed = self.store.data_seed(key)
        return self.data.for_run(seed, keep=seed == self.store.replicate_seed(key.replicate))

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
            if key.measures_path:
                self.measure_path(key)
            else:
                self.train_one(key)
        except Exception as error:
            if self.session.is_chief:
                atomic_write_json(failure, {"error": one_line(error), "time": time.time()})
            raise

    def train_one(self, key: RunKey) -> None:
        """Start ``key`` as its method says, train it, and (rank 0) store what it became."""
        data = self.run_data(key)
        if len(data.train) != self.steps.per_epoch:
            raise RuntimeError(
                f"the loader gives {len(data.train)} batches an epoch, the driver counted "
                f"{self.steps.per_epoch}"
            )
        snip_batches = self.config.baselines.snip_batches
        replicate_seed = self.store.replicate_seed(key.replicate)
        start = run_start(
            self.store,
            key,
            self.steps,
            lambda: self.data.first_minibatches(replicate_seed, snip_batches),
        )
        model = self.store.network(start.weights)
        density = 1.0 if start.mask is None else start.mask.density
        trained_from = time.time()  # the run's start as the runs table shows it
        for observer in self.observers:
            observer.run_started(key, density, start.schedule.total, trained_from)
        self.seed_training(key)
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
            on_eval=partial(self.evaluated, key),
            heartbeat=self.layout.heartbeat_path(key),
        )
        if self.session.is_chief:
            metrics = self.metrics(key, start, result, (trained_from, time.time()))
            self.store_result(key, model, metrics)
        self.session.barrier()

    def evaluated(self, key: RunKey, row: dict[str, float]) -> None:
        for observer in self.observers:
            observer.evaluated(key, row)

    def metrics(
        self, key: RunKey, start: RunStart, result: RunResult, trained: tuple[float, float]
    ) -> dict:
        """A finished run's ``metrics.json``: where it started, how and where it was trained, its
        history and what the history says (final and best accuracy, the early-stop step)."""
        return {
            "replicate": key.replicate,
            "level": key.level,
            "branch": key.branch,
            "density": 1.0 if start.mask is None else start.mask.density,
            "kept": start.mask.num_kept if start.mask is not None else None,
            "start_step": start.step,
            "total_steps": start.schedule.total,
            "compute_factor": start.compute_factor,
            "world_size": self.session.world_size,
            "ranks": self.session.ranks(),  # each rank's host and cluster address
            "per_worker_batch": self.data.per_worker_batch(),
            "resumed_from": result.resumed_from,
            "seconds": result.seconds,
            "trained_from": trained[0],  # wall-clock (Unix) times around the steps
            "trained_until": trained[1],
            **result.history.summary(),
            "history": result.history.rows,
        }

    def store_result(self, key: RunKey, model: torch.nn.Module, metrics: dict) -> None:
        """The final weights, the observers told (tracking is complete before the run is marked
        done), then ``metrics.json`` (the run is done) and its checkpoints gone."""
        atomic_torch_save(
            {name: t.detach().cpu() for name, t in model.state_dict().items()},
            self.layout.final_path(key),
        )
        for observer in self.observers:
            observer.run_finished(key, metrics)
        self.layout.write_metrics(key, metrics)
        Checkpoints(self.layout.run_dir(key)).clear()

    def measure_path(self, key: RunKey) -> None:
        """The errors along the straight path between ``key``'s two copies."""
        points = self.config.instability.points
        splits = self.data.path_splits()
        examples = self.data.path_examples()
        if self.session.is_chief:
            on = ", ".join(f"{examples[split]:,} {split}" for split in splits)
            say(f"[{key}] measuring {points} points between the copies on {on} examples")
        model = self.store.network().to(self.session.device)
        measure_path(self.layout, key, model, splits, examples, points, self.session)

    def train(self, keys: Iterable[RunKey]) -> None:
        """Train ``keys`` in order; the evaluation loaders are built (FFCV compiles its code)
        before the first key is asked for, while other slots' first runs may still be its
        inputs, not after."""
        self.data.evaluation()
        for key in keys:
            self.run(key)
        for observer in self.observers:
            observer.finished()

    def execute(self, job: Job) -> None:
        """Every run of ``job`` in its order, in this process (tests and debugging)."""
        self.train(job.keys())
