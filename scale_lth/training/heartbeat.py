"""A training run's word that it is alive and how far it is: rank 0 rewrites a small JSON file
at most every ``HEARTBEAT_SECONDS`` (and at the start), so ``scale-lth status`` can tell a
running run from one whose process is gone, and its step rate, from the files alone."""

from __future__ import annotations

import time
from pathlib import Path

from scale_lth.storage import atomic_write_json

HEARTBEAT_SECONDS = 30.0


class Heartbeat:
    def __init__(self, path: Path, step: int, total: int) -> None:
        self.path = path
        self.total = total
        self.first = (step, time.time())  # this attempt's start: the rate is measured from it
        self.last = float("-inf")
        self.beat(step)

    def beat(self, step: int) -> None:
        """Write where the run is, if the last word is ``HEARTBEAT_SECONDS`` old."""
        now = time.time()
        if now - self.last < HEARTBEAT_SECONDS:
            return
        self.last = now
        first_step, first_time = self.first
        atomic_write_json(
            self.path,
            {
                "step": step,
                "total": self.total,
                "time": now,
                "attempt_step": first_step,
                "attempt_time": first_time,
            },
        )
