"""The application's top layer, beside the command line: check the input, make sure the data
exists, convert durations to steps, skip what is finished, run the rest on Ray, report, and
say what it cost. It drives the lottery engine through orchestration, tracking and report."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import yaml

from scale_lth import preflight
from scale_lth.config import Config
from scale_lth.cost import write_costs
from scale_lth.data import DataInfo, ensure_written, planned_info
from scale_lth.errors import UserError
from scale_lth.lottery.graph import Reads, RunGraph
from scale_lth.lottery.job import Job
from scale_lth.lottery.network import build_network, check_model
from scale_lth.lottery.steps import Steps
from scale_lth.orchestration import ray_train
from scale_lth.orchestration.shared_storage import check_shared_storage
from scale_lth.progress import BarFactory, ConsoleProgress
from scale_lth.report import write_report
from scale_lth.results import Layout, Observer, RunKey
from scale_lth.storage import atomic_write
from scale_lth.tracking.experiment import prepare_tracking
from scale_lth.tracking.reports import log_report
from scale_lth.tracking.tracker import MlflowTracker, deliver_earlier_events
from scale_lth.tracking.tracker import sync as sync_events
from scale_lth.tracking.ui import ui_line
from scale_lth.tracking.uri import credentials_moved, tracking_uri


@dataclass(frozen=True)
class Checked:
    """An invocation's input once every check has passed."""

    config: Config  # its tracking store settled (a fallback if the server is away)
    layout: Layout
    steps: Steps  # the experiment's durations in steps
    info: DataInfo  # the data, written


def write_config(config: Config, info: DataInfo) -> None:
    """The resolved config beside the results, for people (results are found by hash), and the
    identity a later invocation checks the folder against."""
    path = Layout(config.experiment_dir).config_path
    if not path.exists():
        atomic_write(path, yaml.safe_dump(config.flat(), sort_keys=False))
    preflight.write_identity(config, info)


def chief_observers(config: Config, bars: BarFactory | None) -> list[Observer]:
    """What the worker in charge of a run reports to: the console (with a progress bar per
    run from ``bars``, if given) and MLflow."""
    observers: list[Observer] = [ConsoleProgress(bars)]
    if config.tracking.enabled:
        observers.append(MlflowTracker(config))
    return observers


def run_job(config: Config, job: Job, quiet: bool = False) -> list[RunKey]:
    """Run what ``job`` asks for that is not finished, then report; return the runs this
    call finished."""
    started = time.perf_counter()
    config = credentials_moved(config.resolved())  # before anything writes or prints the URI
    before = set(Layout(config.experiment_dir).every_finished())
    todo = [key for key in job.keys() if key not in before]
    graph = RunGraph.of(todo, before, Reads.of(config))
    if graph.missing:  # before the data is written or anything else is done
        first, more = sorted(graph.missing)[0], len(graph.missing) - 1
        raise UserError(
            f"the trunk has no finished run for {first}{f' (and {more} more)' if more else ''}: "
            "train the levels before these first (`scale-lth lottery` on this config)"
        )
    checked = check(config, job)
    layout = checked.layout
    finished: list[RunKey] = []
    if not todo:
        config = ready_tracking(checked.config)
        print(f"Nothing to do: all {len(job.keys())} runs are finished in {layout.root}")
    else:
        print(f"Experiment {layout.root}: {len(todo)} of {len(job.keys())} runs to train")
        with ThreadPoolExecutor(1, thread_name_prefix="tracking") as pool:
            tracking = pool.submit(ready_tracking, checked.config)  # while Ray starts
            ray_train.connect(checked.config)
            config = tracking.result()
        check_shared_storage(config)  # before anything is written for the runs
        write_config(config, checked.info)
        bars = not quiet and sys.stdout.isatty()  # progress bars only for a person watching
        ray_train.fit(config, graph, checked.steps, partial(chief_observers, config), bars)
        finished = [key for key in layout.every_finished() if key not in before]
    report(config, finished)
    if finished:
        wall = time.perf_counter() - started
        training = training_seconds([layout.read_metrics(key) for key in finished])
        overhead = max(0.0, wall - training)
        print(
            f"Finished {len(finished)} runs in {wall:.1f} s: some run was in its training and "
            f"evaluation steps for {training:.1f} s, orchestration overhead {overhead:.1f} s "
            f"({100 * overhead / wall:.1f}% of the wall time)"
        )
    return finished


def ready_tracking(config: Config) -> Config:
    """The config with its tracking store settled, the MLflow experiment made and what earlier
    processes could not send delivered (seconds: MLflow's import, a new store's tables)."""
    config = prepare_tracking(config)
    if config.tracking.enabled:
        deliver_earlier_events(config)
    return config


def training_seconds(runs: list[dict]) -> float:
    """How long at least one of these runs was in its training and evaluation steps (the union
    of their ``trained_from``-``trained_until`` intervals: runs train side by side)."""
    covered, reach = 0.0, float("-inf")
    for begin, end in sorted((run["trained_from"], run["trained_until"]) for run in runs):
        covered += max(0.0, end - max(begin, reach))
        reach = max(reach, end)
    return covered


def check(config: Config, job: Job) -> Checked:
    """Every check that can fail on the input, before Ray starts or a result is written (the
    embedded digits are written last, once everything else has passed)."""
    check_model(config)
    preflight.check_folders(config)
    preflight.check_gpu_share(config)
    preflight.check_ray(config)
    config = preflight.check_tracking(config, tracking_uri(config))
    planned = planned_info(config.data_dir, config.data.dataset)
    preflight.check_data(config, planned)
    probe = build_network(config, planned, seed=0)
    preflight.check_levels(config, probe)
    preflight.check_channels(config, probe)
    layout = Layout(config.experiment_dir)
    steps = Steps.of(config, planned.splits["train"])
    preflight.check_results(layout, job.keys(), probe, config, steps)
    if any(not layout.is_done(key) for key in job.keys()):  # room only for what will train
        preflight.check_disk(config, probe, runs_per_level=1 + len(job.branches))
    info = ensure_written(config.data_dir, config.data.dataset)
    preflight.check_identity(config, info)
    return Checked(config, layout, steps, info)


def report(config: Config, finished: list[RunKey]) -> None:
    """Measure what the finished runs' networks cost, print the experiment's table and where
    its plots are; attach them to MLflow."""
    write_costs(Layout(config.experiment_dir))
    written = write_report(config.experiment_dir, f"{config.name} ({config.hash})")
    if not written.rows:
        return
    print(written.text())
    print(f"Plots: {', '.join(str(path) for path in written.plots)}")
    if config.tracking.enabled:
        if finished:
            log_report(
                config,
                written.files,
                written.metrics_by_replicate(),
                written.summary_metrics(),
                written.method_curves(),
            )
        print(ui_line(config))


def sync(config: Config) -> int:
    """Send MLflow every tracking event the experiment kept on disk; 1 if some are left (the
    store stopped answering), else 0."""
    config = credentials_moved(config)
    preflight.check_tracking(config, tracking_uri(config), fallback=False)
    config = prepare_tracking(config)
    left = sync_events(config)
    if left:
        print(f"{left} tracking events are still waiting: MLflow stopped answering")
        return 1
    print(f"MLflow at {config.tracking.uri} has every tracking event")
    return 0
