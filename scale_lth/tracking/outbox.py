"""Tracking events kept on disk until the tracking store has them.

Every event of a run (started, evaluated, finished) is appended to an outbox file in the
experiment's ``tracking/`` folder before anything is sent, and how far it is delivered is kept
beside it. Whatever the store could not take (a server that went away, a killed
process) stays there and is delivered, in order, by the next invocation or by
``scale-lth sync``. Each process has an outbox of its own, so workers never write one file
together, and holds its lock while it lives (scale_lth.locks): another process delivers an
outbox only once it holds its lock, so a live process's outbox is never delivered twice or
removed under it; an outbox delivered whole is removed.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from scale_lth.locks import FileLock
from scale_lth.storage import atomic_write

Event = dict[str, Any]


class Outbox:
    """One process's events: ``<name>.jsonl``, and ``<name>.sent`` holding how many of its
    bytes are delivered (so each delivery reads only what is new)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.sent_path = self.path.with_suffix(".sent")
        self.owner = FileLock(self.path.with_suffix(".lock"))  # held by whoever delivers it
        self.lock = threading.Lock()

    @classmethod
    def for_this_process(cls, folder: Path) -> Outbox:
        """This process's outbox, its lock held for as long as the process lives."""
        box = cls(Path(folder) / f"outbox-{socket.gethostname()}-{os.getpid()}.jsonl")
        box.owner.acquire(wait=True)
        return box

    def append(self, event: Event) -> None:
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as file:
                file.write(json.dumps(event) + "\n")

    def _sent(self) -> int:
        return int(self.sent_path.read_text()) if self.sent_path.is_file() else 0

    def pending(self) -> list[tuple[Event, int]]:
        """The events not delivered yet, in order, each with the byte offset just past it (a
        line cut short by a kill is left out)."""
        with self.lock:
            if not self.path.is_file():
                return []
            with open(self.path, "rb") as file:
                offset = self._sent()
                file.seek(offset)
                lines = file.read().splitlines(keepends=True)
        events = []
        for line in lines:
            if not line.endswith(b"\n"):
                break  # the last line, half-written when its process was killed
            offset += len(line)
            events.append((json.loads(line), offset))
        return events

    def delivered(self, offset: int) -> None:
        """Everything before byte ``offset`` is in the store."""
        with self.lock:
            atomic_write(self.sent_path, str(offset))

    def deliver(
        self, send: Callable[[list[Event]], None], together: Callable[[Event], object]
    ) -> int:
        """Send the pending events in order, recording each call's; consecutive events with
        the same ``together(event)`` (not None) go in one call. Returns how many events are
        left (an error from ``send`` propagates, the events it met still pending)."""
        group: list[Event] = []
        for index, (event, end) in enumerate(pending := self.pending()):
            group.append(event)
            following = pending[index + 1][0] if index + 1 < len(pending) else None
            if (
                following is None
                or together(event) is None
                or together(event) != together(following)
            ):
                send(group)
                self.delivered(end)
                group = []
        return len(self.pending())

    def remove_if_delivered(self) -> None:
        """Remove the outbox if every event is delivered (its owner's lock held)."""
        with self.lock:
            if self.path.is_file() and self._sent() >= self.path.stat().st_size:
                self.path.unlink()
                self.sent_path.unlink(missing_ok=True)
                self.owner.path.unlink(missing_ok=True)


def outboxes(folder: Path) -> Iterator[Outbox]:
    """Every outbox in ``folder`` (those of earlier processes included)."""
    for path in sorted(Path(folder).glob("outbox-*.jsonl")):
        yield Outbox(path)
