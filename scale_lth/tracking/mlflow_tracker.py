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
import logging
import os
import re
import sys
import threading
from dataclasses import astuple
from pathlib import Path

from scale_lth.config import Config
from scale_lth.console import say
from scale_lth.results import Layout, Observer, RunKey
from scale_lth.storage import exclusive
from scale_lth.tracking.outbox import Event, Outbox, outboxes

# MLflow 3 reports usage over the network on every client call (~10 ms each here, and these
# machines have no internet): off unless the user has set it.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# A tracking server that went away must not hold a call for minutes of retries: the events
# wait in the outbox and are sent again later anyway.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

SUMMARY_METRICS = (
    "final_accuracy",
    "best_accuracy",
    "early_stop_iteration",
    "early_stop_accuracy",
    "density",
    "compute_factor",
)
MAX_METRICS_PER_CALL = 1000  # MLflow's limit for one log_batch


def tracking_uri(config: Config) -> str:
    """The config's URI, else MLFLOW_TRACKING_URI, else ``sqlite:///<cwd>/mlflow.db``."""
    uri = config.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    return uri or f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"


def experiment_name(config: Config) -> str:
    return config.tracking.experiment or config.name


def local_store(uri: str) -> Path | None:
    """The SQLite file behind a ``sqlite:///`` URI, else None."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


# MLflow 3 opens an experiment of this kind on its training runs and charts, not on the GenAI
# overview (traces, token usage) it shows an experiment of no kind.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def training_experiment(client, name: str, location: str | None = None) -> str:
    """The id of the model-training experiment ``name``, made (or marked) as one if needed."""
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
    for key, value in EXPERIMENT_KIND.items():
        if found.tags.get(key) != value:
            client.set_experiment_tag(found.experiment_id, key, value)
    return found.experiment_id


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
        location = (store.parent / "mlruns").as_uri() if store is not None else None
        training_experiment(MlflowClient(uri), name, location)
    return dataclasses.replace(
        config, tracking=dataclasses.replace(config.tracking, uri=uri, experiment=name)
    )


# Where the runs are stored is no parameter of the experiment, and the resolved URI may come
# from the environment (MLFLOW_TRACKING_URI) and carry credentials.
NOT_PARAMS = ("tracking.uri",)


def experiment_params(config: Config) -> dict[str, object]:
    """The config as MLflow params: every value the user set, with no credentials in them."""
    return {
        key: _without_credentials(value)
        for key, value in config.flat().items()
        if key not in NOT_PARAMS
    }


def _without_credentials(value: object) -> object:
    """``scheme://user:secret@host`` -> ``scheme://***@host`` in any string value."""
    if isinstance(value, str):
        return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", value)
    return value


def _value(value: object) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


def watches_system(config: Config) -> bool:
    """``tracking.system_metrics``: true, false, or (none) where runs use GPUs."""
    setting = config.tracking.system_metrics
    return config.scaling.use_gpu if setting is None else setting


def system_monitor(run_id: str, uri: str):
    """MLflow's sampler of CPU, memory, disk, network and (with NVML) GPU use, started on the
    run; it logs ``system/...`` metrics every 10 s (MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL)."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # a line per run else
    monitor = SystemMetricsMonitor(run_id, sampling_interval=10, tracking_uri=uri)
    monitor.start()
    return monitor


class MlflowWriter:
    """The MLflow calls for tracking events. Each is safe to repeat: a run is found by its tags
    before one is made, an evaluation row at a step already logged is skipped, a finished run
    is left as it is; so events delivered again after a kill or a resume leave each run once."""

    def __init__(self, config: Config, watch_system: bool = False) -> None:
        from mlflow import MlflowClient

        self.config = config
        # while its runs train in this process: their system metrics, each run's from its start
        self.monitors: dict[RunKey, object] | None = {} if watch_system else None
        self.layout = Layout(config.experiment_dir)
        self.client = MlflowClient(config.tracking.uri)
        self.experiment_id = self.client.get_experiment_by_name(
            config.tracking.experiment
        ).experiment_id
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
            self.finished(event["replicates"])
            return
        key = RunKey(*event["key"])
        if kind == "run_started":
            self.run_started(key, event["density"], event["total_steps"])
        elif kind == "evaluated":
            self.evaluated(key, [each["row"] for each in events])
        elif kind == "run_finished":
            self.run_finished(key, event["metrics"])
        else:
            raise ValueError(f"unknown tracking event {kind!r}")

    def _find(self, tags: dict[str, str]) -> str | None:
        query = " and ".join(f"tags.{key} = '{value}'" for key, value in tags.items())
        found = self.client.search_runs([self.experiment_id], filter_string=query, max_results=1)
        return found[0].info.run_id if found else None

    def _params(self):
        from mlflow.entities import Param

        return [Param(key, _value(value)) for key, value in experiment_params(self.config).items()]

    def _parent_tags(self, replicate: int) -> dict[str, str]:
        return {
            "experiment_hash": self.config.hash,
            "replicate": str(replicate),
            "run_kind": "trunk",
        }

    def _tags(self, key: RunKey) -> dict[str, str]:
        return {
            "experiment_hash": self.config.hash,
            "replicate": str(key.replicate),
            "level": str(key.level),
            "branch": key.branch,
            "run_kind": "level",
        }

    def parent(self, replicate: int) -> str:
        if replicate not in self.parents:
            tags = self._parent_tags(replicate)
            run_id = self._find(tags)
            if run_id is None:
                name = f"{self.config.name}-{self.config.hash} replicate {replicate}"
                run_id = self.client.create_run(
                    self.experiment_id, tags=tags, run_name=name
                ).info.run_id
                self.client.log_batch(run_id, params=self._params())
            self.parents[replicate] = run_id
        return self.parents[replicate]

    def _run(self, key: RunKey) -> str:
        if key not in self.runs:
            run_id = self._find(self._tags(key))
            if run_id is None:
                raise LookupError(f"no MLflow run for {key} (its start was never logged)")
            self.runs[key] = run_id
        return self.runs[key]

    def run_started(self, key: RunKey, density: float, total_steps: int) -> None:
        parent = self.parent(key.replicate)
        tags = self._tags(key)
        run_id = self._find(tags)
        if run_id is None:
            run_id = self.client.create_run(
                self.experiment_id,
                tags={
                    **tags,
                    "method": key.method,
                    "density": f"{density:.6f}",
                    "mlflow.parentRunId": parent,
                },
                run_name=f"level {key.level} {key.branch} ({density:.2%})",
            ).info.run_id
            self.client.log_batch(run_id, params=self._params())
        elif self.client.get_run(run_id).info.status != "FINISHED":
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
        for start in range(0, len(metrics), MAX_METRICS_PER_CALL):
            self.client.log_batch(run_id, metrics=metrics[start : start + MAX_METRICS_PER_CALL])
        self.last_step[run_id] = max(logged, *(int(row["iteration"]) for row in rows))

    def run_finished(self, key: RunKey, metrics: dict) -> None:
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
        split = (
            [RunTag("accuracy_split", metrics["accuracy_split"])]
            if "accuracy_split" in metrics
            else []
        )
        self.client.log_batch(run_id, metrics=summary, tags=split)
        mask = self.layout.mask_path(key)
        if mask.is_file():
            self.client.log_artifact(run_id, str(mask))
        self.client.set_terminated(run_id)

    def finished(self, replicates: list[int]) -> None:
        for replicate in replicates:
            self.client.set_terminated(self.parent(replicate))


class MlflowTracker(Observer):
    """Puts every event in this process's outbox, and a sender thread delivers them at once
    (rows that wait together go in one store call), so training never waits on the tracking
    store. A finished run waits until its events are in the store while the store answers (its
    results on disk then never get ahead of MLflow); while it does not, training goes on and
    the events wait in the outbox, retried every RETRY_SECONDS."""

    RETRY_SECONDS = 30.0

    def __init__(self, config: Config) -> None:
        self.config = config
        self.outbox = Outbox.for_this_process(Layout(config.experiment_dir).tracking_dir)
        self.writer: MlflowWriter | None = None
        self.replicates: set[int] = set()
        self.problem: str | None = None  # why the last delivery stopped, if it did
        self.attempts = threading.Condition()
        self.started = self.ended = 0  # delivery attempts begun and completed
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._deliver, name="mlflow-sender", daemon=True)
        self.thread.start()

    def _deliver(self) -> None:
        while True:
            self.wake.wait(timeout=self.RETRY_SECONDS)
            self.wake.clear()
            with self.attempts:
                self.started += 1
            try:
                self.writer = self.writer or MlflowWriter(
                    self.config, watch_system=watches_system(self.config)
                )
                self.outbox.deliver(self.writer.send, self.writer.together)
                self.problem = None
            except Exception as error:  # the store is away: the events stay in the outbox
                self.problem = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            with self.attempts:
                self.ended += 1
                self.attempts.notify_all()

    def _put(self, event: Event) -> None:
        self.outbox.append(event)
        self.wake.set()

    def _wait(self) -> None:
        """Until a delivery attempt begun after now has ended (attempts run one at a time, so
        the ``target``-th to end is one begun after now)."""
        with self.attempts:
            target = self.started + 1
        self.wake.set()
        with self.attempts:
            self.attempts.wait_for(lambda: self.ended >= target)

    def run_started(self, key: RunKey, density: float, total_steps: int) -> None:
        self.replicates.add(key.replicate)
        event = {"density": density, "total_steps": total_steps}
        self._put({"event": "run_started", "key": list(astuple(key)), **event})

    def evaluated(self, key: RunKey, row: dict[str, float]) -> None:
        self._put({"event": "evaluated", "key": list(astuple(key)), "row": dict(row)})

    def run_finished(self, key: RunKey, metrics: dict) -> None:
        named = ("total_steps", "accuracy_split", *SUMMARY_METRICS)
        summary = {name: metrics[name] for name in named}
        self._put({"event": "run_finished", "key": list(astuple(key)), "metrics": summary})
        self._wait()

    def finished(self) -> None:
        self._put({"event": "finished", "replicates": sorted(self.replicates)})
        self._wait()
        left = len(self.outbox.pending())
        if left:
            say(
                f"MLflow at {self.config.tracking.uri} did not take {left} tracking events "
                f"({self.problem}); they are kept in {self.outbox.path.parent} and sent by the "
                "next run of this experiment or by `scale-lth sync CONFIG`"
            )
        else:
            self.outbox.remove_if_delivered()


def sync(config: Config) -> int:
    """Deliver every outbox of the experiment (earlier processes' included) to its MLflow;
    returns how many events are left (the store stopped answering)."""
    writer: MlflowWriter | None = None
    left = 0
    for box in outboxes(Layout(config.experiment_dir).tracking_dir):
        if box.pending():
            writer = writer or MlflowWriter(config)
            left += box.deliver(writer.send, writer.together)
        box.remove_if_delivered()
    return left


Metrics = list[tuple[str, float, int]]  # (name, value, step)


def log_report(
    config: Config, files: list[Path], by_replicate: dict[int, Metrics], summary: Metrics
) -> None:
    """Attach the report's files to every trunk (parent) run of the experiment and log each
    replicate's own metrics (its curve, by level) on its parent; log the table over replicates
    and the files once more on the experiment's summary run. A store that does not answer gets
    a line, not an error (the report is on disk)."""
    from mlflow import MlflowClient

    try:
        client = MlflowClient(config.tracking.uri)
        experiment = client.get_experiment_by_name(config.tracking.experiment)
        query = f"tags.experiment_hash = '{config.hash}' and tags.run_kind = 'trunk'"
        for run in client.search_runs([experiment.experiment_id], filter_string=query):
            replicate = int(run.data.tags["replicate"])
            _attach(client, run.info.run_id, files, by_replicate.get(replicate, []))
        _attach(client, _summary_run(client, experiment.experiment_id, config), files, summary)
    except Exception as error:  # whatever the client meets: the store is away
        say(f"MLflow at {config.tracking.uri} did not take the report ({error})")


def _attach(client, run_id: str, paths: list[Path], metrics: Metrics) -> None:
    from mlflow.entities import Metric

    for path in paths:
        client.log_artifact(run_id, str(path), artifact_path="report")
    logged = [Metric(name, value, 0, step) for name, value, step in metrics]
    for start in range(0, len(logged), MAX_METRICS_PER_CALL):
        client.log_batch(run_id, metrics=logged[start : start + MAX_METRICS_PER_CALL])


def _summary_run(client, experiment_id: str, config: Config) -> str:
    """The experiment's summary run (the report over every replicate), found by its tags."""
    tags = {"run_kind": "summary", "summary_of": config.hash}
    query = " and ".join(f"tags.{key} = '{value}'" for key, value in tags.items())
    found = client.search_runs([experiment_id], filter_string=query, max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, tags=tags, run_name=f"{config.name} summary")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def log_comparison(
    uri: str, experiment_name: str, comparison: str, legends: dict[str, str], paths: list[Path]
) -> None:
    """A run of its own (found again by ``comparison``, its id) in ``experiment_name`` holding
    a comparison's table and plot; ``legends`` (folder -> what differs) become its params.
    Returns a line saying where; a store that does not answer gets a line, not an error (the
    files are on disk)."""
    from mlflow import MlflowClient

    try:
        client = MlflowClient(uri)
        experiment_id = training_experiment(client, experiment_name)
        tags = {"run_kind": "comparison", "comparison_id": comparison}
        query = " and ".join(f"tags.{key} = '{value}'" for key, value in tags.items())
        runs = client.search_runs([experiment_id], filter_string=query, max_results=1)
        if runs:
            run_id = runs[0].info.run_id
        else:
            run = client.create_run(experiment_id, tags=tags, run_name=f"compare {comparison}")
            run_id = run.info.run_id
            for folder, legend in legends.items():
                client.log_param(run_id, folder[:250], _value(legend))
            client.set_terminated(run_id)
        for path in paths:
            client.log_artifact(run_id, str(path), artifact_path="compare")
    except Exception as error:  # whatever the client meets: the store is away
        return f"MLflow at {uri} did not take the comparison ({error})"
    return f"MLflow at {uri}: experiment '{experiment_name}', run 'compare {comparison}'"


def deliver_earlier_events(config: Config) -> None:
    """On the driver, before training: what earlier processes could not send goes first."""
    try:
        left = sync(config)
    except Exception as error:  # the store is away again: the events wait for the next time
        say(f"MLflow at {config.tracking.uri} did not take earlier tracking events ({error})")
        return
    if left:
        say(f"{left} earlier tracking events are still waiting for MLflow")


UI_PORT = 5000  # where `ui_command` serves the UI


def ui_command(config: Config) -> str:
    """The one command that opens the MLflow UI on this experiment's store, on loopback."""
    store = local_store(config.tracking.uri)
    if store is None:
        return f"open {config.tracking.uri} in a browser"
    mlflow = Path(sys.executable).with_name("mlflow")
    return f"{mlflow} ui --backend-store-uri sqlite:///{store} --host 127.0.0.1 --port {UI_PORT}"


def experiment_page(base: str, experiment_id: str, charts: bool = False) -> str:
    """The UI's page of an experiment's training runs (MLflow 3.17 picks its model-training
    view from the address, ``workflowType``, not from the experiment's kind), or their charts."""
    view = "&compareRunsMode=CHART" if charts else ""
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning{view}"


def ui_line(config: Config) -> str:
    """What to run and open to see the experiment in the UI."""
    from mlflow import MlflowClient

    base = f"http://127.0.0.1:{UI_PORT}"
    if local_store(config.tracking.uri) is None:
        base = config.tracking.uri.rstrip("/")
    try:
        found = MlflowClient(config.tracking.uri).get_experiment_by_name(config.tracking.experiment)
        page = experiment_page(base, found.experiment_id)
    except Exception:  # the store is away: its front page, then the experiment by name
        page = base
    return f"MLflow UI: {ui_command(config)}  (then open {page})"
