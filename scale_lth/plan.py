"""What an experiment costs before it is spent: its run graph's size, GPU-hours, critical path
and wall time on N GPUs under the scheduler's own order, from a training throughput (images per
second per GPU) measured on the user's hardware. Nothing is trained.

A run's work is its optimizer steps times the global batch: level 0 and the runs that start at
step 0 train the whole schedule, runs rewound to step k train the rest of it, Scratch-B is
counted at its cap (``baselines.scratch_b_max_factor``: an upper bound). An instability path
evaluates ``instability.points`` networks on its subsample of every split, counted as forward
passes at three times the training rate (a training step is a forward and a backward pass,
about three forwards). The evaluations during training are not counted.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path

from scale_lth.config import Config
from scale_lth.data import planned_info
from scale_lth.data.info import info_path
from scale_lth.data.sources import HELD_OUT, IMAGENET_HOLDOUT, IMAGENET_TRAIN
from scale_lth.lottery.graph import Reads, RunGraph, start_of_run
from scale_lth.lottery.job import Job
from scale_lth.lottery.network import build_network
from scale_lth.lottery.steps import Steps, per_worker_batch, world_size
from scale_lth.preflight import check_levels
from scale_lth.results import InstabilityRun, Layout, RunKey

# Split sizes as scale-lth writes them (validation held out of each training set), for
# planning before the data is written.
SPLIT_IMAGES = {
    "imagenet": {
        "train": IMAGENET_TRAIN - IMAGENET_HOLDOUT,
        "val": IMAGENET_HOLDOUT,
        "test": 50_000,
    },
    "cifar10": {"train": 50_000 - HELD_OUT, "val": HELD_OUT, "test": 10_000},
    "mnist": {"train": 60_000 - HELD_OUT, "val": HELD_OUT, "test": 10_000},
}
FORWARDS_PER_STEP = 3  # a training image's forward and backward pass, in forward passes


def split_images(config: Config) -> dict[str, int]:
    """Each split's size, from the data if it is there (the digits are not written for it),
    else from the data set's known sizes; with the data, the levels are checked to keep
    weights, as ``lottery`` checks them."""
    folder = Path(config.data_dir)
    if not info_path(folder).is_file() and config.data.dataset in SPLIT_IMAGES:
        return SPLIT_IMAGES[config.data.dataset]
    info = planned_info(folder, config.data.dataset)
    check_levels(config, build_network(config, info, seed=0))
    return info.splits


def path_images(config: Config, splits: dict[str, int]) -> int:
    """The images one instability path evaluates: every point on the subsample of each split
    (``instability.train_examples`` of the training split, ``eval_examples`` of the others)."""
    return config.instability.points * sum(config.instability.examples(splits).values())


def run_steps(config: Config, key: RunKey, steps: Steps) -> int:
    """The optimizer steps ``key`` trains (a path measurement trains none). With
    ``rewinding.step: auto`` the rewind point is counted as the earliest candidate (an upper
    bound)."""
    total = steps.schedule.total
    if key.measures_path:
        return 0
    start = start_of_run(key, config.rewinding.mode)
    if start is None and isinstance(key.kind, InstabilityRun):  # a copy of the dense network
        return total - steps.at(key.kind.at)
    if start is None:
        return total
    if start.schedule == "dense_compute":
        total = round(total * config.baselines.scratch_b_max_factor)
    rewind = steps.rewind
    if rewind is None:
        rewind = min(steps.at(str(step)) for step in config.rewinding.candidates)
    return total - (rewind if start.step == "rewind" else 0)


def makespan(graph: RunGraph, seconds: dict[RunKey, float], slots: int) -> float:
    """When the last run ends if ``slots`` runs train at once, each slot taking the first of
    the ready runs (the scheduler's order) as soon as it is free."""
    waiting = {key: len(before) for key, before in graph.waits_for.items()}
    ready = [(graph.priority(key), key) for key, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    running: list[tuple[float, int, RunKey]] = []
    now, ended = 0.0, 0
    while ended < len(graph):
        while ready and len(running) < slots:
            _, key = heapq.heappop(ready)
            heapq.heappush(running, (now + seconds[key], graph.position[key], key))
        now, _, key = heapq.heappop(running)
        ended += 1
        for after in graph.waiting_on[key]:
            waiting[after] -= 1
            if waiting[after] == 0:
                heapq.heappush(ready, (graph.priority(after), after))
    return now


def critical_seconds(graph: RunGraph, seconds: dict[RunKey, float]) -> float:
    """The longest chain of runs, in seconds: no number of GPUs finishes sooner."""
    ends: dict[RunKey, float] = {}
    for key in graph.order:  # each after every run it waits for
        ends[key] = seconds[key] + max((ends[run] for run in graph.waits_for[key]), default=0.0)
    return max(ends.values(), default=0.0)


@dataclass(frozen=True)
class Plan:
    runs: int
    finished: int
    tickets: int
    instability: int  # instability copies and path measurements
    paths: int  # path measurements
    path_images: int  # images one path evaluates
    dense_run_images: int  # images the dense network trains on
    gpus_per_run: int
    images_per_second: float  # per GPU
    gpu_hours: float
    critical_path_runs: int
    critical_path_hours: float
    wall_hours: dict[int, float | None]  # GPUs -> hours (None: fewer GPUs than a run needs)

    def lines(self, name: str) -> list[str]:
        out = [
            f"{name}: {self.runs} runs to train ({self.tickets} tickets, "
            f"{self.runs - self.tickets - self.instability} baselines, {self.instability} for "
            f"instability; {self.finished} finished already), "
            f"{self.gpu_hours:,.1f} GPU-hours at {self.images_per_second:,.0f} images/s per GPU",
            f"critical path: {self.critical_path_runs} runs, {self.critical_path_hours:,.1f} h "
            f"with {self.gpus_per_run} GPU{'s' if self.gpus_per_run > 1 else ''} per run",
            f"{'GPUs':>6}  {'run slots':>9}  {'wall time':>22}",
        ]
        for gpus, hours in self.wall_hours.items():
            slots = gpus // self.gpus_per_run
            wall = (
                "fewer GPUs than a run"
                if hours is None
                else f"{hours:,.1f} h ({hours / 24:,.1f} d)"
            )
            out.append(f"{gpus:>6}  {slots:>9}  {wall:>22}")
        if self.paths:
            out.append(
                f"instability paths: {self.paths} x {self.path_images:,} images evaluated "
                f"({self.path_images / self.dense_run_images:.2%} of the dense run's training "
                f"images each), counted at {FORWARDS_PER_STEP}x the training rate"
            )
        out.append(
            "Scratch-B counted at baselines.scratch_b_max_factor (an upper bound); evaluation "
            "during training not counted"
        )
        return out


def plan(config: Config, gpus: list[int], images_per_second: float) -> Plan:
    job = Job.lottery(config)
    finished = set(Layout(config.experiment_dir).every_finished())
    graph = RunGraph.of(job.keys(), finished, Reads.of(config))
    splits = split_images(config)
    steps = Steps.of(config, splits["train"])
    per_run = world_size(config)
    images_per_step = per_worker_batch(config) * per_run
    images = {key: run_steps(config, key, steps) * images_per_step for key in graph.waits_for}
    evaluated = path_images(config, splits)
    forwards = {  # in training images' worth of work
        key: evaluated / FORWARDS_PER_STEP if key.measures_path else count
        for key, count in images.items()
    }
    seconds = {key: count / (images_per_second * per_run) for key, count in forwards.items()}
    wall = {
        count: makespan(graph, seconds, count // per_run) / 3600 if count >= per_run else None
        for count in gpus
    }
    return Plan(
        runs=len(graph),
        finished=len(finished & set(job.keys())),
        tickets=sum(key.is_ticket for key in graph.waits_for),
        instability=sum(key.in_instability for key in graph.waits_for),
        paths=sum(key.measures_path for key in graph.waits_for),
        path_images=evaluated,
        dense_run_images=steps.schedule.total * images_per_step,
        gpus_per_run=per_run,
        images_per_second=images_per_second,
        gpu_hours=sum(forwards.values()) / images_per_second / 3600,
        critical_path_runs=len(graph.critical_path()),
        critical_path_hours=critical_seconds(graph, seconds) / 3600,
        wall_hours=wall,
    )
