"""Tracking events on their way to MLflow: the observer that puts a run's events in this
process's outbox and sends them from a thread of its own, and the delivery of what earlier
processes left in theirs."""

from __future__ import annotations

import threading
import time
from dataclasses import astuple
from typing import Any

from scale_lth.config import Config
from scale_lth.console import say
from scale_lth.results import Layout, Observer, RunKey
from scale_lth.tracking.outbox import Event, Outbox, outboxes
from scale_lth.tracking.system_metrics import watches_system
from scale_lth.tracking.writer import SUMMARY_METRICS, MlflowWriter


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

    def run_started(self, key: RunKey, density: float, total_steps: int, started_at: float) -> None:
        self.replicates.add(key.replicate)
        event = {"density": density, "total_steps": total_steps, "started_at": started_at}
        self._put({"event": "run_started", "key": list(astuple(key)), **event})

    def evaluated(self, key: RunKey, row: dict[str, float]) -> None:
        self._put({"event": "evaluated", "key": list(astuple(key)), "row": dict(row)})

    def run_finished(self, key: RunKey, metrics: dict[str, Any]) -> None:
        named = ("total_steps", "accuracy_split", "ranks", "trained_until", *SUMMARY_METRICS)
        summary = {name: metrics[name] for name in named}
        self._put({"event": "run_finished", "key": list(astuple(key)), "metrics": summary})
        if self.problem is None:  # the store answered last time: the run waits for it
            self._wait()

    def finished(self) -> None:
        self._put(
            {"event": "finished", "replicates": sorted(self.replicates), "ended_at": time.time()}
        )
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
    """Deliver the outboxes of the experiment that no live process holds (earlier processes'
    outboxes, left by a kill or an outage) to its MLflow; returns how many of their events
    are left (the store stopped answering). A live process delivers its own."""
    writer: MlflowWriter | None = None
    left = 0
    for box in outboxes(Layout(config.experiment_dir).tracking_dir):
        if not box.owner.acquire():
            continue  # its process lives and delivers it
        try:
            if box.pending():
                writer = writer or MlflowWriter(config)
                left += box.deliver(writer.send, writer.together)
            box.remove_if_delivered()
        finally:
            box.owner.release()
    return left


def deliver_earlier_events(config: Config) -> None:
    """On the driver, before training: what earlier processes could not send goes first."""
    try:
        left = sync(config)
    except Exception as error:  # the store is away again: the events wait for the next time
        say(f"MLflow at {config.tracking.uri} did not take earlier tracking events ({error})")
        return
    if left:
        say(f"{left} earlier tracking events are still waiting for MLflow")
