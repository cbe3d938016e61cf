"""A run's training time: the seconds spent in training and evaluation steps, across every
attempt of the run, with the time spent reporting, saving and checkpointing left out."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

now = time.perf_counter  # the time source (a test replaces it to count time it controls)


class Clock:
    """Counts from ``start`` on, from the seconds a checkpoint recorded; ``paused`` leaves a
    stretch out. ``seconds`` is right at any moment, so a checkpoint taken while paused records
    exactly the time counted so far and a resumed run never counts a stretch twice."""

    def __init__(self, seconds: float = 0.0) -> None:
        self._counted = seconds
        self._since: float | None = None

    def start(self) -> None:
        if self._since is None:
            self._since = now()

    def stop(self) -> None:
        if self._since is not None:
            self._counted += now() - self._since
            self._since = None

    @property
    def seconds(self) -> float:
        running = now() - self._since if self._since is not None else 0.0
        return self._counted + running

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Leave what happens inside out of the count."""
        running = self._since is not None
        self.stop()
        try:
            yield
        finally:
            if running:
                self.start()
