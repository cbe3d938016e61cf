"""Measuring a network: loss and accuracy over a split, and the rows a run records as it trains."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Mapping

import torch
import torch.distributed as dist
import torch.nn.functional as F

from scale_lth.training.clock import Clock
from scale_lth.training.history import History
from scale_lth.training.session import Session

Batch = tuple[torch.Tensor, torch.Tensor]  # images, labels
EvalBatches = Iterable[Batch]  # a split's batches, in order (this rank's shard)
Row = dict[str, float]


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """bf16/fp16 autocast on the device, or nothing."""
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    batches: EvalBatches,
    device: torch.device,
    amp: str = "none",
    distributed: bool = False,
) -> dict[str, float]:
    """Mean loss and accuracy over every example; with ``distributed``, ``batches`` is this
    rank's shard and the totals are summed over the process group."""
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    for images, labels in batches:
        with autocast(device, amp):
            logits = model(images)
        totals[0] += F.cross_entropy(logits.float(), labels, reduction="sum")
        totals[1] += (logits.argmax(dim=1) == labels).sum()
        totals[2] += labels.numel()
    if distributed:
        dist.all_reduce(totals)
    model.train(was_training)
    loss, correct, count = totals.tolist()
    return {"loss": loss / count, "accuracy": correct / count}


class TrainingLoss:
    """The training loss summed on the device since the last row (read only when a row is
    measured: no device sync per step), with its step count."""

    def __init__(self, total: torch.Tensor, count: int = 0) -> None:
        self.total = total
        self.count = count

    def add(self, loss: torch.Tensor) -> None:
        self.total += loss.detach()
        self.count += 1

    def take_mean(self) -> float:
        """The mean since the last call (NaN before any step), starting a new sum."""
        mean = (self.total / self.count).item() if self.count else math.nan
        self.total, self.count = torch.zeros_like(self.total), 0
        return mean


class Evaluator:
    """Measures a run's rows: the learning rate, the mean training loss since the last row,
    and loss and accuracy on every evaluation split (each rank its shard); records each in the
    history and hands it to ``report`` (rank 0), the clock paused while it does."""

    def __init__(
        self,
        network: torch.nn.Module,
        splits: Mapping[str, EvalBatches],
        amp: str,
        session: Session,
        report: Callable[[Row], None] | None,
        clock: Clock,
    ) -> None:
        self.network = network
        self.splits = splits
        self.amp = amp
        self.session = session
        self.report = report if session.is_chief else None
        self.clock = clock

    def measure(self, step: int, lr: float, loss: TrainingLoss, history: History) -> None:
        row: Row = {"iteration": step, "lr": lr, "train_loss": loss.take_mean()}
        distributed = self.session.world_size > 1
        for split, batches in self.splits.items():
            measured = evaluate(self.network, batches, self.session.device, self.amp, distributed)
            for name, value in measured.items():
                row[f"{split}_{name}"] = value
        history.record(row)
        if self.report is not None:
            with self.clock.paused():
                self.report(row)
