"""What a person watching an experiment sees: where it is, a bar per run, a line per result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from scale_lth.console import say
from scale_lth.results import Observer, RunKey


class Bar(Protocol):
    """A progress bar, as tqdm's."""

    def set_description(self, description: str) -> None: ...

    def update(self, steps: int) -> object: ...  # tqdm's says whether it redrew; unread

    def close(self) -> None: ...


BarFactory = Callable[[str, int], Bar]  # (description, total steps) -> a new bar


def describe(metrics: dict) -> str:
    """One line for a finished run."""
    return (
        f"{metrics['density'] * 100:7.3f}% weights  "
        f"final acc {metrics['final_accuracy'] * 100:5.1f}%  "
        f"best {metrics['best_accuracy'] * 100:5.1f}%  "
        f"early stop @ {metrics['early_stop_iteration']}  "
        f"({metrics['seconds']:.1f} s)"
    )


def measured(row: dict[str, float]) -> str:
    """One evaluation row: the accuracies and losses of every split measured."""
    splits = [name.removesuffix("_accuracy") for name in row if name.endswith("_accuracy")]
    return ", ".join(
        f"{split} acc {row[f'{split}_accuracy'] * 100:5.1f}% loss {row[f'{split}_loss']:.4f}"
        for split in splits
    )


class ConsoleProgress(Observer):
    """Prints where the experiment is: a line when a run starts and when it ends with its
    result; in between, a progress bar per run from ``bars`` (tqdm's in a process, Ray's inside
    Ray workers, drawn by the driver) or, without ``bars`` (output to a file), a line per
    evaluation."""

    def __init__(self, bars: BarFactory | None = None) -> None:
        self.bars = bars
        self.bar: Bar | None = None
        self.position = 0
        self.total = 0

    def run_started(self, key: RunKey, density: float, total_steps: int, started_at: float) -> None:
        say(f"[{key}] training at {density * 100:.3f}% weights remaining")
        self.total = total_steps
        if self.bars is not None:
            self.bar = self.bars(key.run_id, total_steps)
            self.position = 0

    def evaluated(self, key: RunKey, row: dict[str, float]) -> None:
        if self.bar is None:
            say(f"[{key}] step {int(row['iteration'])} of {self.total}: {measured(row)}")
            return
        step = int(row["iteration"])
        accuracy = row.get("test_accuracy", row.get("val_accuracy", 0.0))
        self.bar.set_description(f"{key.run_id} acc {accuracy * 100:.1f}%")
        self.bar.update(step - self.position)
        self.position = step

    def run_finished(self, key: RunKey, metrics: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        say(f"[{key}] done: {describe(metrics)}")


def plain_bar(description: str, total: int) -> Bar:
    """A progress bar in this process (tqdm's)."""
    from tqdm import tqdm

    return tqdm(desc=description, total=total, unit="it")
