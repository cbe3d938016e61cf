"""Which runs an invocation asks for (the runner skips those already finished), and which of
the trunk's runs a method's run reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scale_lth import methods
from scale_lth.results import RunKey


def source_level(pruning_method: str, level: int) -> int:
    """The level whose trained weights level ``level``'s mask is cut from: the previous one
    (iterative pruning) or the dense network (one-shot)."""
    return 0 if pruning_method == "oneshot" else level - 1


def trunk_runs_needed(
    start: methods.Start, replicate: int, level: int, pruning_method: str
) -> set[RunKey]:
    """The trunk's runs that must be finished before a run starting as ``start`` at ``level``
    can: what its ``needs`` name."""
    needed = set()
    if "ticket_mask" in start.needs:
        needed.add(RunKey(replicate, level))
    if {"init", "rewind"} & set(start.needs):
        needed.add(RunKey(replicate, 0))
    if "trained" in start.needs:
        needed.add(RunKey(replicate, source_level(pruning_method, level)))
    return needed


@dataclass(frozen=True)
class Job:
    replicates: Sequence[int]
    levels: Sequence[int]
    branches: Sequence[str] = ()
    trunk: bool = True  # train the tickets (False: only branches off an existing trunk)

    def keys(self) -> list[RunKey]:
        keys = []
        for replicate in self.replicates:
            for level in self.levels:
                if self.trunk:
                    keys.append(RunKey(replicate, level))
                if level > 0:
                    keys += [RunKey(replicate, level, branch) for branch in self.branches]
        return keys
