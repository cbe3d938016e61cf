"""An experiment's runs as a graph: each run waits for the runs whose results it reads, and
ready runs start longest chain first.

A run at level l >= 1 reads its mask, cut from the final weights of its source level (the
previous level, or level 0 with one-shot pruning), and whatever weights its method starts from
(level 0's step-0 or step-k weights, or the source level's final ones). So the ticket of level
l waits for level l-1's ticket, every baseline of level l waits for the same run only, and the
trunk is the critical path: with iterative pruning it is the levels + 1 tickets one after
another, and everything else fits beside it.

The instability analysis adds its own runs: two copies starting where the level's runs start
(level 0: the dense run's weights at step k, so they wait for it; level l >= 1: as the ticket),
and the path measurement between them, which waits for both. With ``rewinding.step: auto``
every run that starts from the rewind point also waits for level 0's path measurements at every
candidate, from which the point is chosen.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from scale_lth import methods
from scale_lth.config import Config
from scale_lth.results import PATH, RunKey, copies_of, instability_branch


def source_level(pruning_method: str, level: int) -> int:
    """The level whose trained weights level ``level``'s mask is cut from: the previous one
    (iterative pruning) or the dense network (one-shot)."""
    return 0 if pruning_method == "oneshot" else level - 1


def start_of_run(key: RunKey, rewinding_mode: str) -> methods.Start | None:
    """How a run at level >= 1 starts, in the registry's words: its method's start, or for a
    copy of the instability analysis its level's ticket's. None for the dense level's runs
    (fresh weights, or a copy from the dense run's weights at a step) and path measurements
    (they train nothing)."""
    if key.level == 0 or key.measures_path:
        return None
    return methods.start_of(key.method or methods.TICKET, rewinding_mode)


def runs_read(start: methods.Start, key: RunKey, pruning_method: str) -> set[RunKey]:
    """The trunk's runs whose results a run starting as ``start`` at ``key``
    reads: its source level's (the mask, and any trained weights) and level 0's (the init or
    rewind weights) where its start names them."""
    if key.level == 0:
        return set()
    source = RunKey(key.replicate, source_level(pruning_method, key.level))
    read = {source}
    if {"init", "rewind"} & set(start.needs):
        read.add(RunKey(key.replicate, 0))
    return read


@dataclass(frozen=True)
class Reads:
    """What each run of one experiment reads: the one rule, used by the run graph, the SLURM
    graph launcher and ``plan``."""

    pruning_method: str = "iterative"
    rewinding_mode: str = "weights"
    candidates: tuple[str, ...] = ()  # ``rewinding.step: auto``'s candidate steps

    @classmethod
    def of(cls, config: Config) -> Reads:
        rewinding = config.rewinding
        automatic = rewinding.step == "auto"
        candidates = tuple(str(step) for step in rewinding.candidates) if automatic else ()
        return cls(config.pruning.method, rewinding.mode, candidates)

    def __call__(self, key: RunKey) -> set[RunKey]:
        if key.measures_path:
            return set(copies_of(key))
        start = start_of_run(key, self.rewinding_mode)
        if start is None:  # the dense level: its copies start from the dense run's weights
            return {RunKey(key.replicate, 0)} if key.in_instability else set()
        read = runs_read(start, key, self.pruning_method)
        if self.candidates and "rewind" in start.needs:
            read |= {
                RunKey(key.replicate, 0, instability_branch(PATH, at)) for at in self.candidates
            }
        return read

    def source(self, key: RunKey) -> RunKey:
        """The trunk run whose trained weights ``key``'s mask is cut from (level >= 1)."""
        return RunKey(key.replicate, source_level(self.pruning_method, key.level))


@dataclass(frozen=True)
class RunGraph:
    """The runs to train, each with the runs to train that it waits for (finished ones are
    already there)."""

    waits_for: Mapping[RunKey, frozenset[RunKey]]
    missing: frozenset[RunKey] = frozenset()  # runs read that are neither finished nor to train

    @classmethod
    def of(
        cls,
        keys: Iterable[RunKey],
        finished: Collection[RunKey],
        reads: Reads,
    ) -> RunGraph:
        todo = {key: None for key in keys if key not in finished}  # in order, looked up fast
        waits_for, missing = {}, set()
        for key in todo:
            read = reads(key)
            waits_for[key] = frozenset(run for run in read if run in todo)
            missing |= {run for run in read if run not in todo and run not in finished}
        return cls(waits_for, frozenset(missing))

    def __len__(self) -> int:
        return len(self.waits_for)

    @cached_property
    def waiting_on(self) -> dict[RunKey, list[RunKey]]:
        """For each run, the runs that wait for it."""
        waiting_on: dict[RunKey, list[RunKey]] = {key: [] for key in self.waits_for}
        for key, before in self.waits_for.items():
            for run in before:
                waiting_on[run].append(key)
        return waiting_on

    @cached_property
    def order(self) -> list[RunKey]:
        """The runs in an order where each comes after every run it waits for (walked
        without recursion: a graph of thousands of levels is as easy as one of two)."""
        waiting = {key: len(before) for key, before in self.waits_for.items()}
        ordered = [key for key, count in waiting.items() if count == 0]
        for key in ordered:  # grows while it is walked
            for after in self.waiting_on[key]:
                waiting[after] -= 1
                if waiting[after] == 0:
                    ordered.append(after)
        return ordered

    @cached_property
    def chain(self) -> dict[RunKey, int]:
        """Each run's longest chain of runs that wait on it, itself included."""
        length: dict[RunKey, int] = {}
        for key in reversed(self.order):
            length[key] = 1 + max((length[run] for run in self.waiting_on[key]), default=0)
        return length

    def critical_path(self) -> list[RunKey]:
        """The longest chain of runs, each waiting for the one before."""
        path: list[RunKey] = []
        candidates = [key for key, before in self.waits_for.items() if not before]
        while candidates:
            best = max(candidates, key=lambda key: (self.chain[key], -self.position[key]))
            path.append(best)
            candidates = self.waiting_on[best]
        return path

    @cached_property
    def position(self) -> dict[RunKey, int]:
        return {key: index for index, key in enumerate(self.waits_for)}

    def ready(self, done: Collection[RunKey], taken: Collection[RunKey]) -> list[RunKey]:
        """Runs not yet taken whose inputs are done: the longest chain first, the trunk before
        baselines, then the job's order (lower levels first)."""
        done = set(done)
        ready = [
            key
            for key, before in self.waits_for.items()
            if key not in taken and key not in done and before <= done
        ]
        return sorted(ready, key=self.priority)

    def priority(self, key: RunKey) -> tuple[int, bool, int]:
        """Where a ready run goes in the queue (lower first)."""
        return -self.chain[key], not key.is_ticket, self.position[key]
