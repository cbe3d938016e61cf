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

    def accuracy_split(self) -> str:
        """The split the accuracies are reported on: test, or val where the data has no test
        split (ImageNet data written with ``--holdout 0``: its val then doubles as test)."""
        return "test" if "test_accuracy" in self.rows[-1] else "val"

    def summary(self) -> dict[str, float | str]:
        """Final and best accuracy, the early-stop iteration (chosen on val) and the accuracy
        there, all on ``accuracy_split``, which is named beside them."""
        split = self.accuracy_split()
        stop = self.early_stop_iteration()
        at_stop = next(row for row in self.rows if row["iteration"] == stop)
        return {
            "final_accuracy": self.rows[-1][f"{split}_accuracy"],
            "best_accuracy": max(row[f"{split}_accuracy"] for row in self.rows),
            "early_stop_iteration": stop,
            "early_stop_accuracy": at_stop[f"{split}_accuracy"],
            "accuracy_split": split,
        }
