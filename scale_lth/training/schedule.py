"""Learning-rate schedules as a factor of the peak rate at each optimizer step."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence


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
