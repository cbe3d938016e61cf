"""Where an experiment stands, read from its files alone (it works while the experiment runs,
after it ends and after a crash): each run finished, running (its heartbeat is recent),
failed (with its error line), interrupted (started, then its process went away) or waiting;
the compute spent, and an estimate of what is left from the finished runs' cost per step."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from scale_lth.config import Config
from scale_lth.lottery.job import Job
from scale_lth.results import Layout, RunKey
from scale_lth.storage import load_json
from scale_lth.training.heartbeat import HEARTBEAT_SECONDS
from scale_lth.training.state import Checkpoints

ALIVE_SECONDS = 3 * HEARTBEAT_SECONDS  # a heartbeat older than this: the run's process is gone
STATES = ("finished", "running", "failed", "interrupted", "waiting")


@dataclass(frozen=True)
class RunState:
    key: str
    state: str  # one of STATES
    step: int | None = None  # where a started run is
    total: int | None = None
    steps_per_second: float | None = None  # a running run's, over its current attempt
    seconds: float = 0.0  # a running run's current attempt so far
    error: str | None = None  # a failed run's


@dataclass(frozen=True)
class Status:
    root: str
    unit: str  # "GPU-hours" or "CPU worker-hours"
    runs: list[RunState]
    spent_hours: float  # finished runs' training time x ranks, and running ones' so far
    hours_left: float | None  # the rest at the finished runs' cost per step; None: none finished

    def counts(self) -> dict[str, int]:
        return {state: sum(run.state == state for run in self.runs) for state in STATES}

    def as_dict(self) -> dict:
        return {**asdict(self), "counts": self.counts()}

    def lines(self) -> list[str]:
        counts = self.counts()
        out = [
            f"{self.root}: {counts['finished']} of {len(self.runs)} runs finished, "
            f"{counts['running']} running, {counts['failed']} failed, "
            f"{counts['interrupted']} interrupted, {counts['waiting']} waiting"
        ]
        for run in self.runs:
            if run.state == "running":
                rate = f", {run.steps_per_second:,.1f} it/s" if run.steps_per_second else ""
                eta = (
                    f", about {(run.total - run.step) / run.steps_per_second:,.0f} s left"
                    if run.steps_per_second and run.step is not None and run.total is not None
                    else ""
                )
                out.append(f"  running      {run.key}: step {run.step} of {run.total}{rate}{eta}")
            elif run.state in ("failed", "interrupted"):
                why = run.error if run.state == "failed" else f"stopped at step {run.step}"
                out.append(f"  {run.state:<12} {run.key}: {why}")
        left = (
            "unknown (no run finished yet)"
            if self.hours_left is None
            else (f"about {self.hours_left:,.2f}")
        )
        out.append(f"{self.unit} spent {self.spent_hours:,.2f}; left {left}")
        return out


def experiment_status(config: Config, root: Path, now: float | None = None) -> Status:
    """Every run the experiment's lottery asks for, and every other run found in ``root``."""
    layout = Layout(root)
    now = time.time() if now is None else now
    keys = list(dict.fromkeys([*Job.lottery(config).keys(), *_on_disk(layout)]))
    runs = [_state(layout, key, now) for key in keys]
    finished = [layout.read_metrics(key) for key in keys if layout.is_done(key)]
    trained = [run for run in finished if "total_steps" in run]  # not path measurements
    spent = sum(run["seconds"] * run["world_size"] for run in trained)
    ranks = statistics.median(run["world_size"] for run in trained) if trained else 1
    spent += sum(run.seconds * ranks for run in runs if run.state == "running")
    left = None
    if trained:
        per_step = sum(run["seconds"] * run["world_size"] for run in trained) / max(
            1, sum(run["total_steps"] - run["start_step"] for run in trained)
        )
        typical = statistics.median(run["total_steps"] - run["start_step"] for run in trained)
        steps = sum(
            (run.total - run.step) if run.step is not None and run.total else typical
            for key, run in zip(keys, runs, strict=True)
            if run.state != "finished" and not key.measures_path
        )
        left = steps * per_step / 3600
    unit = "GPU-hours" if config.scaling.use_gpu else "CPU worker-hours"
    return Status(str(root), unit, runs, spent / 3600, left)


def _on_disk(layout: Layout) -> list[RunKey]:
    """Runs whose folders say something: finished, started or failed."""
    markers = ("metrics.json", "heartbeat.json", "failure.json")
    return sorted({key for marker in markers for key in layout.holding(marker)})


def _state(layout: Layout, key: RunKey, now: float) -> RunState:
    name = str(key)
    if layout.is_done(key):
        return RunState(name, "finished")
    beat = layout.heartbeat_path(key)
    heard = load_json(beat) if beat.is_file() else None
    step, total = (heard["step"], heard["total"]) if heard else (None, None)
    if heard and now - heard["time"] <= ALIVE_SECONDS:
        elapsed = heard["time"] - heard["attempt_time"]
        done = heard["step"] - heard["attempt_step"]
        rate = done / elapsed if elapsed > 0 and done > 0 else None
        return RunState(name, "running", step, total, rate, seconds=elapsed)
    failure = layout.failure_path(key)
    if failure.is_file():
        return RunState(name, "failed", step, total, error=load_json(failure)["error"])
    if heard or Checkpoints(layout.run_dir(key)).latest() is not None:
        return RunState(name, "interrupted", step, total)
    return RunState(name, "waiting")
