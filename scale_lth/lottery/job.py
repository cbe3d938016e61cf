"""Which runs an invocation asks for (those already finished are skipped)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scale_lth.config import Config
from scale_lth.results import RunKey


@dataclass(frozen=True)
class Job:
    replicates: Sequence[int]
    levels: Sequence[int]
    branches: Sequence[str] = ()
    trunk: bool = True  # train the tickets (False: only branches off an existing trunk)

    @classmethod
    def lottery(cls, config: Config) -> Job:
        """The whole experiment: every level of the trunk, every baseline at every level."""
        return cls(
            replicates=range(config.replicates),
            levels=range(config.pruning.levels + 1),
            branches=[config.run_branch(method) for method in config.baselines.branches],
        )

    def keys(self) -> list[RunKey]:
        keys = []
        for replicate in self.replicates:
            for level in self.levels:
                if self.trunk:
                    keys.append(RunKey(replicate, level))
                if level > 0:
                    keys += [RunKey(replicate, level, branch) for branch in self.branches]
        return keys
