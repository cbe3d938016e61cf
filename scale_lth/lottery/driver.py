"""The driver side of an experiment: check the input, make sure the data exists, skip what is
finished, run the rest on Ray, and say what it cost."""

from __future__ import annotations

import dataclasses
import math
import time
from functools import partial
from pathlib import Path

import yaml

from scale_lth.config import Config, ConfigError
from scale_lth.data import DataInfo, ensure_written
from scale_lth.lottery.branches import BRANCHES
from scale_lth.lottery.experiment import Job, Observer
from scale_lth.lottery.layout import Layout, RunKey
from scale_lth.progress import ConsoleProgress


def absolute_paths(config: Config) -> Config:
    """Paths resolved against the driver's working folder, as every worker must see them."""
    data = config.data
    if data.path:
        data = dataclasses.replace(data, path=str(Path(data.path).resolve()))
    return dataclasses.replace(
        config,
        output_root=str(Path(config.output_root).resolve()),
        data_root=str(Path(config.data_root).resolve()),
        data=data,
    )


def iterations_per_epoch(config: Config, info: DataInfo) -> int:
    """Optimizer steps per epoch: each worker's shard in whole per-worker batches."""
    workers = config.scaling.num_workers
    per_worker = math.ceil(info.splits["train"] / workers)
    return per_worker // (config.data.batch_size // workers)


def validate(config: Config, info: DataInfo, job: Job) -> None:
    """Stop before any work on a config that cannot run, naming the key and the fix."""
    workers = config.scaling.num_workers
    if config.data.batch_size % workers:
        raise ConfigError(
            f"data.batch_size {config.data.batch_size} must divide evenly over "
            f"scaling.num_workers {workers}"
        )
    per_epoch = iterations_per_epoch(config, info)
    if per_epoch < 1:
        raise ConfigError(
            f"data.batch_size {config.data.batch_size} exceeds the {info.splits['train']} "
            "training examples: lower it"
        )
    total = config.training.duration.iterations(per_epoch)
    rewind = config.rewinding.step.iterations(per_epoch)
    if total < 1:
        raise ConfigError("training.duration must be at least one iteration")
    if rewind >= total:
        raise ConfigError(
            f"rewinding.step {config.rewinding.step} ({rewind} it) must come before the end of "
            f"training.duration {config.training.duration} ({total} it)"
        )
    unknown = sorted(set(job.branches) - set(BRANCHES))
    if unknown:
        raise ConfigError(
            f"unknown baseline(s) {', '.join(unknown)}; known: {', '.join(sorted(BRANCHES))}"
        )


def write_config(config: Config) -> None:
    """The resolved config beside the results, for people (results are found by hash)."""
    path = config.experiment_dir / "config.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config.flat(), sort_keys=False))


def chief_observers(quiet: bool) -> list[Observer]:
    """What rank 0 reports to: the console (and, later, tracking)."""
    return [ConsoleProgress(quiet)]


def run_job(config: Config, job: Job, quiet: bool = False) -> list[RunKey]:
    """Run what ``job`` asks for that is not finished; return the runs this call finished."""
    from scale_lth.orchestration import ray_train

    started = time.perf_counter()
    config = absolute_paths(config)
    info = ensure_written(config.data_dir, config.data.dataset)
    validate(config, info, job)
    layout = Layout(config.experiment_dir)
    before = set(layout.finished())
    todo = [key for key in job.keys() if key not in before]
    if not todo:
        print(f"Nothing to do: all {len(job.keys())} runs are finished in {layout.root}")
        return []
    print(f"Experiment {layout.root}: {len(todo)} of {len(job.keys())} runs to train", flush=True)
    write_config(config)
    ray_train.fit(config, job, partial(chief_observers, quiet))
    finished = [key for key in layout.finished() if key not in before]
    wall = time.perf_counter() - started
    lanes = 1
    if config.scaling.parallelism == "replicates":
        lanes = min(config.scaling.num_workers, len(job.replicates))
    training = sum(layout.read_metrics(key)["seconds"] for key in finished) / lanes
    overhead = max(0.0, wall - training)
    print(
        f"Finished {len(finished)} runs in {wall:.1f} s: {training:.1f} s in training and "
        f"evaluation steps{' per worker' if lanes > 1 else ''}, orchestration overhead "
        f"{overhead:.1f} s ({100 * overhead / wall:.1f}% of the wall time)"
    )
    return finished
