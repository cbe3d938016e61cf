"""Tracking events kept on disk until the tracking store has them.

Every event of a run (started, evaluated, finished) is appended to an outbox file in the
experiment's ``tracking/`` folder before anything is sent, and a count of the events delivered
is kept beside it. Whatever the store could not take (a server that went away, a killed
process) stays there and is delivered, in order, by the next invocation or by
``scale-lth sync``. Each process has an outbox of its own, so workers never write one file
together; an outbox delivered whole is removed.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Event = dict[str, Any]


class Outbox:
    """One process's events: ``<name>.jsonl`` and ``<name>.sent`` (events delivered)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.sent_path = self.path.with_suffix(".sent")
        self.lock = threading.Lock()

    @classmethod
    def for_this_process(cls, folder: Path) -> Outbox:
        return cls(Path(folder) / f"outbox-{socket.gethostname()}-{os.getpid()}.jsonl")

    def append(self, event: Event) -> None:
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as file:
                file.write(json.dumps(event) + "\n")

    def _sent(self) -> int:
        return int(self.sent_path.read_text()) if self.sent_path.is_file() else 0

    def pending(self) -> list[Event]:
        """The events not delivered yet, in order (a line cut short by a kill is dropped)."""
        with self.lock:
            if not self.path.is_file():
                return []
            lines = self.path.read_text().splitlines()
        events = []
        for line in lines[self._sent() :]:
            try:
                events.append(json.loads(line))
            except ValueError:
                break  # the last line, half-written when its process was killed
        return events

    def delivered(self, count: int) -> None:
        """``count`` more events are in the store."""
        with self.lock:
            temporary = self.sent_path.with_name(f".{self.sent_path.name}.partial")
            temporary.write_text(str(self._sent() + count))
            os.replace(temporary, self.sent_path)

    def deliver(self, send: Callable[[Event], None]) -> int:
        """Send the pending events in order, recording each; returns how many are left (an
        error from ``send`` propagates, the event it met still pending)."""
        events = self.pending()
        for event in events:
            send(event)
            self.delivered(1)
        return len(self.pending())

    def remove_if_delivered(self) -> None:
        with self.lock:
            if self.path.is_file() and self._sent() >= len(self.path.read_text().splitlines()):
                self.path.unlink()
                self.sent_path.unlink(missing_ok=True)


def outboxes(folder: Path) -> Iterator[Outbox]:
    """Every outbox in ``folder`` (those of earlier processes included)."""
    for path in sorted(Path(folder).glob("outbox-*.jsonl")):
        yield Outbox(path)
