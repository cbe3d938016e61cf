"""Which runs an invocation asks for (those already finished are skipped)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scale_lth.config import Config
from scale_lth.results import RunKey, instability_runs

REWIND = "rewind"  # a level's instability copies start from its own rewind point


@dataclass(frozen=True)
class Job:
    replicates: Sequence[int]
    levels: Sequence[int]
    branches: Sequence[str] = ()
    trunk: bool = True  # train the tickets (False: only branches off an existing trunk)
    instability_starts: Sequence[tuple[int, str]] = ()  # (level, start): two copies and their path

    @classmethod
    def lottery(cls, config: Config) -> Job:
        """The whole experiment: every level of the trunk, every baseline at every level, and
        with ``rewinding.step: auto`` the dense network's instability at every candidate."""
        automatic = config.rewinding.step == "auto"
        return cls(
            replicates=range(config.replicates),
            levels=range(config.pruning.levels + 1),
            branches=[config.run_branch(method) for method in config.baselines.branches],
            instability_starts=[(0, str(step)) for step in config.rewinding.candidates]
            if automatic
            else [],
        )

    @classmethod
    def instability_analysis(
        cls, config: Config, steps: Sequence[str], levels: Sequence[int]
    ) -> Job:
        """The dense network's instability from each of ``steps``, and that of each level in
        ``levels`` (>= 1) from its rewind point: the trunk up to them, no baselines."""
        rewinding = config.rewinding
        automatic = [str(step) for step in rewinding.candidates if rewinding.step == "auto"]
        dense = dict.fromkeys([*steps, *(automatic if levels else [])])  # auto needs them
        return cls(
            replicates=range(config.replicates),
            levels=range(max(levels, default=0) + 1),
            instability_starts=[(0, step) for step in dense]
            + [(level, REWIND) for level in levels],
        )

    def keys(self) -> list[RunKey]:
        keys = []
        for replicate in self.replicates:
            for level in self.levels:
                if self.trunk:
                    keys.append(RunKey(replicate, level))
                if level > 0:
                    keys += [RunKey(replicate, level, branch) for branch in self.branches]
                for at in (at for where, at in self.instability_starts if where == level):
                    keys += instability_runs(replicate, level, at)
        return keys
