"""The events a run sends to whoever listens (progress display, experiment tracking)."""

from __future__ import annotations

from scale_lth.results.runs import RunKey


class Observer:
    """Hears about runs; attached on rank 0 only."""

    def run_started(self, key: RunKey, density: float, total_steps: int, started_at: float) -> None:
        """``key`` starts training at ``started_at`` (Unix seconds)."""

    def evaluated(self, key: RunKey, row: dict[str, float]) -> None: ...

    def run_finished(self, key: RunKey, metrics: dict) -> None: ...

    def finished(self) -> None:
        """The job is done (every run it asked for is finished)."""
