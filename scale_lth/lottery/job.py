"""Which runs an invocation asks for (those already finished are skipped)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scale_lth.results import RunKey


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
