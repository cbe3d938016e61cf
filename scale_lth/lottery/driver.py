"""The driver side of an experiment: check the input, make sure the data exists, skip what is
finished, run the rest on Ray, and say what it cost."""

from __future__ import annotations

import dataclasses
import math
import sys
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


def chief_observers(config: Config, quiet: bool) -> list[Observer]:
    """What the worker in charge of a run reports to: the console and MLflow."""
    observers: list[Observer] = [ConsoleProgress(quiet)]
    if config.tracking.enabled:
        from scale_lth.tracking.mlflow_tracker import MlflowTracker

        observers.append(MlflowTracker(config))
    return observers


def run_job(config: Config, job: Job, quiet: bool = False) -> list[RunKey]:
    """Run what ``job`` asks for that is not finished, then report; return the runs this
    call finished."""
    from scale_lth.orchestration import ray_train
    from scale_lth.tracking import mlflow_tracker

    started = time.perf_counter()
    config = absolute_paths(config)
    info = ensure_written(config.data_dir, config.data.dataset)
    validate(config, info, job)
    layout = Layout(config.experiment_dir)
    before = set(layout.finished())
    todo = [key for key in job.keys() if key not in before]
    config = mlflow_tracker.prepare(config)
    finished: list[RunKey] = []
    if not todo:
        print(f"Nothing to do: all {len(job.keys())} runs are finished in {layout.root}")
    else:
        print(f"Experiment {layout.root}: {len(todo)} of {len(job.keys())} runs to train")
        write_config(config)
        bars = not quiet and sys.stdout.isatty()  # progress bars only for a person watching
        ray_train.fit(config, job, partial(chief_observers, config, not bars))
        finished = [key for key in layout.finished() if key not in before]
    report(config, finished)
    if finished:
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


def report(config: Config, finished: list[RunKey]) -> None:
    """Print the experiment's table and where its plots are; attach them to MLflow."""
    from scale_lth.report import format_table, write_report
    from scale_lth.tracking import mlflow_tracker

    rows, plots = write_report(config.experiment_dir, f"{config.name} ({config.hash})")
    if not rows:
        return
    print(format_table(rows))
    print(f"Plots: {', '.join(str(path) for path in plots)}")
    if config.tracking.enabled:
        if finished:
            mlflow_tracker.log_report(config, plots)
        print(f"MLflow UI: {mlflow_tracker.ui_command(config)}  (then open http://127.0.0.1:5000)")
