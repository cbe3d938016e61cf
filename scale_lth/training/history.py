"""What a training run measured: one row per evaluation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class History:
    """Evaluation rows (``iteration``, ``lr``, ``train_loss``, ``<split>_loss``, ...)."""

    rows: list[dict[str, float]] = field(default_factory=list)

    def record(self, row: Mapping[str, float]) -> None:
        self.rows.append(dict(row))

    def early_stop_iteration(self) -> int:
        """The iteration of minimum validation loss (LTH footnote 2); the first one on ties."""
        best = min(self.rows, key=lambda row: row["val_loss"])
        return int(best["iteration"])

    def summary(self) -> dict[str, float]:
        """Final and best test accuracy, early-stop iteration and the test accuracy there.

        Data without a test split (ImageNet) reports its validation split as the test split.
        """
        split = "test" if "test_accuracy" in self.rows[-1] else "val"
        stop = self.early_stop_iteration()
        at_stop = next(row for row in self.rows if row["iteration"] == stop)
        return {
            "final_accuracy": self.rows[-1][f"{split}_accuracy"],
            "best_accuracy": max(row[f"{split}_accuracy"] for row in self.rows),
            "early_stop_iteration": stop,
            "early_stop_accuracy": at_stop[f"{split}_accuracy"],
        }
