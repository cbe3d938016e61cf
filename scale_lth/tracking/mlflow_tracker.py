"""MLflow tracking: one MLflow experiment per config name, a parent run per trunk and
replicate, a child run per level and branch.

Every run carries the flattened config as params and the tags ``experiment_hash``,
``replicate``, ``level``, ``branch`` and ``density``; metrics use the iteration as step and the
same names in every branch (``test_accuracy``, ``val_loss``, ...), so MLflow's compare view lines
branches up by level. A run found again after an interruption is continued, not duplicated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from scale_lth.config import Config
from scale_lth.lottery.experiment import Observer
from scale_lth.lottery.layout import Layout, RunKey
from scale_lth.storage import exclusive

# MLflow 3 reports usage over the network on every client call (~10 ms each here, and these
# machines have no internet): off unless the user has set it.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

SUMMARY_METRICS = ("final_accuracy", "best_accuracy", "early_stop_iteration", "early_stop_accuracy")


def tracking_uri(config: Config) -> str:
    """The config's URI, else MLFLOW_TRACKING_URI, else ``sqlite:///<cwd>/mlflow.db``."""
    uri = config.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    return uri or f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"


def experiment_name(config: Config) -> str:
    return config.tracking.experiment or config.name


def local_store(uri: str) -> Path | None:
    """The SQLite file behind a ``sqlite:///`` URI, else None."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def prepare(config: Config) -> Config:
    """On the driver: fix the tracking URI for every worker and create the MLflow experiment
    (artifacts beside a local SQLite store, in ``mlruns/``)."""
    if not config.tracking.enabled:
        return config
    from mlflow import MlflowClient

    uri = tracking_uri(config)
    name = experiment_name(config)
    store = local_store(uri)
    # Two processes creating a SQLite store's tables at once (a sweep's tasks starting
    # together) make one of them fail: the first use is serialised.
    lock = store.with_name(f".{store.name}.lock") if store is not None else None
    with exclusive(lock) if lock is not None else contextlib.nullcontext():
        client = MlflowClient(uri)
        if client.get_experiment_by_name(name) is None:
            location = (store.parent / "mlruns").as_uri() if store is not None else None
            client.create_experiment(name, artifact_location=location)
    return dataclasses.replace(
        config, tracking=dataclasses.replace(config.tracking, uri=uri, experiment=name)
    )


def _value(value: object) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


class MlflowWriter:
    """The MLflow calls for runs as they happen (on the worker in charge of them)."""

    def __init__(self, config: Config) -> None:
        from mlflow import MlflowClient

        self.config = config
        self.layout = Layout(config.experiment_dir)
        self.client = MlflowClient(config.tracking.uri)
        self.experiment_id = self.client.get_experiment_by_name(
            config.tracking.experiment
        ).experiment_id
        self.parents: dict[int, str] = {}
        self.runs: dict[RunKey, str] = {}

    def _find(self, tags: dict[str, str]) -> str | None:
        query = " and ".join(f"tags.{key} = '{value}'" for key, value in tags.items())
        found = self.client.search_runs([self.experiment_id], filter_string=query, max_results=1)
        return found[0].info.run_id if found else None

    def _params(self):
        from mlflow.entities import Param

        return [Param(key, _value(value)) for key, value in self.config.flat().items()]

    def parent(self, replicate: int) -> str:
        if replicate not in self.parents:
            tags = {
                "experiment_hash": self.config.hash,
                "replicate": str(replicate),
                "run_kind": "trunk",
            }
            run_id = self._find(tags)
            if run_id is None:
                name = f"{self.config.name}-{self.config.hash} replicate {replicate}"
                run_id = self.client.create_run(
                    self.experiment_id, tags=tags, run_name=name
                ).info.run_id
                self.client.log_batch(run_id, params=self._params())
            self.parents[replicate] = run_id
        return self.parents[replicate]

    def run_started(self, key: RunKey, density: float, total_steps: int) -> None:
        parent = self.parent(key.replicate)
        tags = {
            "experiment_hash": self.config.hash,
            "replicate": str(key.replicate),
            "level": str(key.level),
            "branch": key.branch,
            "run_kind": "level",
        }
        run_id = self._find(tags)
        if run_id is None:
            run_id = self.client.create_run(
                self.experiment_id,
                tags={
                    **tags,
                    "density": f"{density:.6f}",
                    "mlflow.parentRunId": parent,
                },
                run_name=f"level {key.level} {key.branch} ({density:.2%})",
            ).info.run_id
            self.client.log_batch(run_id, params=self._params())
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.runs[key] = run_id

    def evaluated(self, key: RunKey, row: dict[str, float]) -> None:
        from mlflow.entities import Metric

        step = int(row["iteration"])
        metrics = [
            Metric(name, float(value), 0, step)
            for name, value in row.items()
            if name != "iteration" and value == value  # no NaN (train loss before step 1)
        ]
        self.client.log_batch(self.runs[key], metrics=metrics)

    def run_finished(self, key: RunKey, metrics: dict) -> None:
        from mlflow.entities import Metric

        run_id = self.runs.pop(key)
        step = int(metrics["total_steps"])
        summary = [Metric(name, float(metrics[name]), 0, step) for name in SUMMARY_METRICS]
        summary.append(Metric("density", float(metrics["density"]), 0, step))
        self.client.log_batch(run_id, metrics=summary)
        mask = self.layout.mask_path(key)
        if mask.is_file():
            self.client.log_artifact(run_id, str(mask))
        self.client.set_terminated(run_id)

    def finished(self) -> None:
        for run_id in self.parents.values():
            self.client.set_terminated(run_id)


class MlflowTracker(Observer):
    """Hands every MLflow call to one writer thread, so training never waits on the tracking
    store; a finished run waits until all of its calls are written (its results on disk then
    never get ahead of MLflow)."""

    def __init__(self, config: Config) -> None:
        self.writer = MlflowWriter(config)
        self.calls: queue.Queue[Callable[[], None]] = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._drain, name="mlflow-writer", daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while True:
            call = self.calls.get()
            try:
                if self.error is None:
                    call()
            except BaseException as error:  # handed to the training thread at the next wait
                self.error = error
            finally:
                self.calls.task_done()

    def _wait(self) -> None:
        self.calls.join()
        if self.error is not None:
            raise RuntimeError(f"MLflow tracking failed: {self.error}") from self.error

    def run_started(self, key: RunKey, density: float, total_steps: int) -> None:
        self.calls.put(lambda: self.writer.run_started(key, density, total_steps))

    def evaluated(self, key: RunKey, row: dict[str, float]) -> None:
        row = dict(row)
        self.calls.put(lambda: self.writer.evaluated(key, row))

    def run_finished(self, key: RunKey, metrics: dict) -> None:
        self.calls.put(lambda: self.writer.run_finished(key, metrics))
        self._wait()

    def finished(self) -> None:
        self.calls.put(self.writer.finished)
        self._wait()


def log_report(config: Config, paths: list[Path]) -> None:
    """Attach the report's plots to every trunk (parent) run of the experiment."""
    from mlflow import MlflowClient

    client = MlflowClient(config.tracking.uri)
    experiment = client.get_experiment_by_name(config.tracking.experiment)
    query = f"tags.experiment_hash = '{config.hash}' and tags.run_kind = 'trunk'"
    for run in client.search_runs([experiment.experiment_id], filter_string=query):
        for path in paths:
            client.log_artifact(run.info.run_id, str(path), artifact_path="report")


def ui_command(config: Config) -> str:
    """The one command that opens the MLflow UI on this experiment's store, on loopback."""
    store = local_store(config.tracking.uri)
    if store is None:
        return f"open {config.tracking.uri} in a browser"
    mlflow = Path(sys.executable).with_name("mlflow")
    return f"{mlflow} ui --backend-store-uri sqlite:///{store} --host 127.0.0.1 --port 5000"
