"""Learning-rate schedules as a factor of the peak rate at each optimizer step."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from scale_lth.config.schema import TrainingConfig


def lr_factor(
    kind: str,
    total_steps: int,
    warmup_steps: int = 0,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
) -> Callable[[int], float]:
    """The multiplier of the peak rate at step ``t`` (what ``LambdaLR`` expects).

    - ``constant``: 1 after warmup.
    - ``step``: ``gamma ** (milestones passed)`` after warmup (OpenLTH / LTH papers).
    - ``linear``: rise to 1 over the warmup, then fall linearly to 0 at ``total_steps``
      (ffcv-imagenet's "triangular" schedule).
    Warmup rises linearly from 0 (OpenLTH): ``t / warmup_steps`` for ``t < warmup_steps``.
    """
    if kind not in ("constant", "step", "linear"):
        raise ValueError(f"unknown learning-rate schedule {kind!r}")
    bounds = sorted(milestones)

    def factor(step: int) -> float:
        warm = min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0
        if kind == "step":
            return warm * gamma ** bisect_right(bounds, step)
        if kind == "linear" and step >= warmup_steps:
            remaining = max(0, total_steps - step)
            return remaining / max(1, total_steps - warmup_steps)
        return warm

    return factor


@dataclass(frozen=True)
class Schedule:
    """A run's learning-rate schedule in plain optimizer steps: ``lr_factor``'s arguments, or
    one ``fixed`` factor for every step."""

    kind: str
    total: int
    warmup: int = 0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    fixed: float | None = None

    @classmethod
    def of(cls, training: TrainingConfig, per_epoch: int) -> Schedule:
        """The training config's schedule for ``per_epoch`` optimizer steps per epoch."""
        return cls(
            kind=training.lr_schedule,
            total=training.duration.iterations(per_epoch),
            warmup=training.warmup.iterations(per_epoch),
            milestones=tuple(m.iterations(per_epoch) for m in training.milestones),
            gamma=training.gamma,
        )

    def factor(self) -> Callable[[int], float]:
        """The multiplier of the peak rate at each step."""
        if self.fixed is not None:
            fixed = self.fixed
            return lambda step: fixed
        return lr_factor(self.kind, self.total, self.warmup, self.milestones, self.gamma)

    def stretched(self, factor: float) -> Schedule:
        """``factor`` times the steps, the milestones moved in proportion (Scratch-B)."""
        return replace(
            self,
            total=round(self.total * factor),
            milestones=tuple(round(m * factor) for m in self.milestones),
        )

    def at_final_rate(self) -> Schedule:
        """Every step at the rate of this schedule's last step (fine-tuning)."""
        return replace(self, fixed=self.factor()(self.total - 1))
