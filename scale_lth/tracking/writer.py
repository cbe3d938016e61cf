"""The MLflow calls for tracking events: one MLflow experiment per config name, a parent run per
trunk and replicate, a child run per level and branch.

Every run carries the flattened config as params and the tags ``experiment_hash``,
``replicate``, ``level``, ``branch`` and ``density`` (and, once trained, ``ranks``: where each
rank ran); metrics use the iteration as step and the same names in every branch
(``test_accuracy``, ``val_loss``, ...), so MLflow's compare view lines branches up by level. A
run found again after an interruption is continued, not duplicated.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from scale_lth.config import Config
from scale_lth.results import Layout, RunKey
from scale_lth.tracking.experiment import existing_experiment
from scale_lth.tracking.names import level_name, trunk_name
from scale_lth.tracking.outbox import Event
from scale_lth.tracking.params import run_params
from scale_lth.tracking.runs import find_run, found_or_made, log_metrics
from scale_lth.tracking.system_metrics import system_monitor

if TYPE_CHECKING:
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

SUMMARY_METRICS = (
    "final_accuracy",
    "best_accuracy",
    "early_stop_iteration",
    "early_stop_accuracy",
    "density",
    "compute_factor",
)


# MLflow's limit on a tag's value (mlflow.utils.validation.MAX_TAG_VAL_LENGTH)
TAG_LENGTH = 8000


def ranks_tag(ranks: list[dict[str, Any]]) -> str:
    """Where a run's ranks ran, compactly: ranks on one host and address together, as ranges
    (``node-a 10.0.0.1: 0-7; node-b 10.0.0.2: 8-15``), cut to what a tag holds."""
    by_place: dict[tuple[str, str], list[int]] = {}
    for entry in ranks:
        by_place.setdefault((entry["host"], entry["address"]), []).append(int(entry["rank"]))
    parts = []
    for (host, address), numbers in by_place.items():
        where = f"{host} {address}" if address else host
        parts.append(f"{where}: {_ranges(sorted(numbers))}")
    text = "; ".join(parts)
    return text if len(text) <= TAG_LENGTH else text[: TAG_LENGTH - 3] + "..."


def _ranges(numbers: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2,5``."""
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def level_tags(config: Config, key: RunKey) -> dict[str, str]:
    """The tags that find the MLflow run of ``key``."""
    return {
        "experiment_hash": config.hash,
        "replicate": str(key.replicate),
        "level": str(key.level),
        "branch": key.branch,
        "run_kind": "level",
    }


class MlflowWriter:
    """The MLflow calls for tracking events. Each is safe to repeat: a run is found by its tags
    before one is made, an evaluation row at a step already logged is skipped, a finished run
    is left as it is; so events delivered again after a kill or a resume leave each run once."""

    def __init__(self, config: Config, watch_system: bool = False) -> None:
        from mlflow import MlflowClient

        self.config = config
        # while its runs train in this process: their system metrics, each run's from its start
        self.monitors: dict[RunKey, SystemMetricsMonitor] | None = {} if watch_system else None
        self.layout = Layout(config.experiment_dir)
        self.lock = self.layout.tracking_dir / ".runs.lock"  # one process makes a run
        self.client = MlflowClient(config.tracking.uri)
        self.experiment_id = existing_experiment(self.client, config.tracking.experiment)
        self.parents: dict[int, str] = {}
        self.runs: dict[RunKey, str] = {}
        self.last_step: dict[str, int] = {}

    @staticmethod
    def together(event: Event) -> object:
        """Consecutive evaluation rows of one run are sent in one call."""
        return tuple(event["key"]) if event["event"] == "evaluated" else None

    def send(self, events: list[Event]) -> None:
        """Deliver events of the outbox: one, or consecutive rows of one run (``together``)."""
        event = events[0]
        kind = event["event"]
        if kind == "finished":
            self.finished(event["replicates"], event.get("ended_at"))
            return
        key = RunKey(*event["key"])
        if kind == "run_started":
            started_at = event.get("started_at")  # older events lack it: the time of delivery
            self.run_started(key, event["density"], event["total_steps"], started_at)
        elif kind == "evaluated":
            self.evaluated(key, [each["row"] for each in events])
        elif kind == "run_finished":
            self.run_finished(key, event["metrics"])
        else:
            raise ValueError(f"unknown tracking event {kind!r}")

    def _parent_tags(self, replicate: int) -> dict[str, str]:
        return {
            "experiment_hash": self.config.hash,
            "replicate": str(replicate),
            "run_kind": "trunk",
        }

    def _tags(self, key: RunKey) -> dict[str, str]:
        return level_tags(self.config, key)

    def parent(self, replicate: int, started_at: float | None = None) -> str:
        """The replicate's trunk run, made (starting at ``started_at``) by its first run."""
        if replicate not in self.parents:
            tags = self._parent_tags(replicate)
            make = partial(self._make, tags, trunk_name(self.config, replicate), started_at)
            self.parents[replicate], _ = found_or_made(
                self.client, self.experiment_id, tags, make, self.lock
            )
        return self.parents[replicate]

    def _make(self, tags: dict[str, str], name: str, started_at: float | None) -> str:
        """A new run with ``tags`` and the experiment's params, started at ``started_at`` (Unix
        seconds; None: now)."""
        run_id = self.client.create_run(
            self.experiment_id, start_time=_milliseconds(started_at), tags=tags, run_name=name
        ).info.run_id
        self.client.log_batch(run_id, params=run_params(self.config))
        return run_id

    def _run(self, key: RunKey) -> str:
        if key not in self.runs:
            run_id = find_run(self.client, self.experiment_id, self._tags(key))
            if run_id is None:
                raise LookupError(f"no MLflow run for {key} (its start was never logged)")
            self.runs[key] = run_id
        return self.runs[key]

    def run_started(
        self, key: RunKey, density: float, total_steps: int, started_at: float | None = None
    ) -> None:
        parent = self.parent(key.replicate, started_at)
        tags = self._tags(key)
        described = {
            **tags,
            "method": key.method or "instability",
            "density": f"{density:.6f}",
            "mlflow.parentRunId": parent,
        }
        make = partial(self._make, described, level_name(key), started_at)
        run_id, made = found_or_made(self.client, self.experiment_id, tags, make, self.lock)
        if not made and self.client.get_run(run_id).info.status != "FINISHED":
            self.client.update_run(run_id, status="RUNNING")
        self.runs[key] = run_id
        if self.monitors is not None and key not in self.monitors:
            self.monitors[key] = system_monitor(run_id, self.config.tracking.uri)

    def _logged_up_to(self, run_id: str) -> int:
        """The last step with evaluation metrics in the store (-1: none)."""
        if run_id not in self.last_step:
            history = self.client.get_metric_history(run_id, "lr")
            self.last_step[run_id] = max((metric.step for metric in history), default=-1)
        return self.last_step[run_id]

    def evaluated(self, key: RunKey, rows: list[dict[str, float]]) -> None:
        from mlflow.entities import Metric

        run_id = self._run(key)
        logged = self._logged_up_to(run_id)
        metrics = [
            Metric(name, float(value), 0, int(row["iteration"]))
            for row in rows
            if int(row["iteration"]) > logged  # else logged before a kill or a delivery
            for name, value in row.items()
            if name != "iteration" and value == value  # no NaN (train loss before step 1)
        ]
        log_metrics(self.client, run_id, metrics)
        self.last_step[run_id] = max(logged, *(int(row["iteration"]) for row in rows))

    def run_finished(self, key: RunKey, metrics: dict[str, Any]) -> None:
        from mlflow.entities import Metric, RunTag

        run_id = self._run(key)
        monitor = self.monitors.pop(key, None) if self.monitors is not None else None
        if monitor is not None:
            monitor.finish()  # its last samples go in before the run ends
        if self.client.get_run(run_id).info.status == "FINISHED":
            return
        step = int(metrics["total_steps"])
        present = [name for name in SUMMARY_METRICS if name in metrics]  # older events lack some
        summary = [Metric(name, float(metrics[name]), 0, step) for name in present]
        tags = (
            [RunTag("accuracy_split", metrics["accuracy_split"])]
            if "accuracy_split" in metrics
            else []
        )
        if metrics.get("ranks"):
            tags.append(RunTag("ranks", ranks_tag(metrics["ranks"])))
        self.client.log_batch(run_id, metrics=summary, tags=tags)
        mask = self.layout.mask_path(key)
        if mask.is_file():
            self.client.log_artifact(run_id, str(mask))
        self.client.set_terminated(run_id, end_time=_milliseconds(metrics.get("trained_until")))

    def finished(self, replicates: list[int], ended_at: float | None = None) -> None:
        for replicate in replicates:
            self.client.set_terminated(self.parent(replicate), end_time=_milliseconds(ended_at))


def _milliseconds(seconds: float | None) -> int | None:
    """A Unix time in seconds as MLflow keeps run times (None stays None: MLflow's now)."""
    return None if seconds is None else int(seconds * 1000)
