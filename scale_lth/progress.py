"""What a person watching an experiment sees: where it is, a bar per run, a line per result."""

from __future__ import annotations

from scale_lth.console import say
from scale_lth.results import Observer, RunKey


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
    result; in between, a progress bar per run (inside Ray workers the bar is Ray's tqdm, drawn
    by the driver) or, when ``quiet`` (output to a file), a line per evaluation."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar = None
        self.position = 0
        self.total = 0

    def run_started(self, key: RunKey, density: float, total_steps: int) -> None:
        say(f"[{key}] training at {density * 100:.3f}% weights remaining")
        self.total = total_steps
        if not self.quiet:
            from ray.experimental.tqdm_ray import tqdm

            self.bar = tqdm(desc=f"{key.run_id}", total=total_steps, unit="it")
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
