"""Hands an experiment's ready runs to the slots that train them, one Ray actor per invocation.

A slot is a worker group training runs with DDP (``scaling.parallelism: ddp``) or one worker
training whole runs alone (``runs``). Every rank of a slot asks for its slot's next run by turn
number and all get the same answer, so the ranks agree without a collective (a baseline may wait
hours for its level's ticket: longer than a collective's timeout). A run is finished when its
results are on disk; the runs that wait for it are then ready. A worker group that Ray Train
restarts asks again from turn 0 and meets the same runs (the runner skips the finished ones and
resumes the interrupted one), so no other slot ever takes a run a slot holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, Literal

from scale_lth.lottery.graph import RunGraph
from scale_lth.results import Layout, RunKey

WAIT: Final = "wait"  # nothing ready now: ask again soon
Answer = RunKey | Literal["wait"] | None  # a slot's next run, WAIT, or None: none is left
# A waiting slot asks again within this: a run that becomes ready starts at most this late (a
# question costs the queue about a millisecond).
MAX_PAUSE_SECONDS = 0.2


class RunQueue:
    def __init__(self, graph: RunGraph, experiment_dir: Path) -> None:
        self.graph = graph
        self.layout = Layout(Path(experiment_dir))
        self.answers: dict[tuple[str, int], RunKey | None] = {}
        self.taken: set[RunKey] = set()  # handed to a slot (finished or not)
        self.done: set[RunKey] = set()
        self.stopped = False

    def _refresh(self) -> None:
        for key in self.taken - self.done:
            if self.layout.is_done(key):
                self.done.add(key)

    def next(self, slot: str, turn: int) -> Answer:
        """The slot's ``turn``-th run; None when every run is taken by a slot (or the queue is
        stopped); WAIT when none is ready yet."""
        if (slot, turn) in self.answers:
            return self.answers[(slot, turn)]
        self._refresh()
        if self.stopped or len(self.taken) == len(self.graph):
            answer = None
        else:
            ready = self.graph.ready(self.done, self.taken)
            if not ready:
                return WAIT
            answer = ready[0]
            self.taken.add(answer)
        self.answers[(slot, turn)] = answer
        return answer

    def stop(self) -> None:
        """Hand out nothing more (a slot failed for good): the others end after their run."""
        self.stopped = True

    def status(self) -> dict[str, int]:
        self._refresh()
        running = len(self.taken - self.done)
        ready = len(self.graph.ready(self.done, self.taken))
        waiting = len(self.graph) - len(self.done) - running - ready
        return {"running": running, "ready": ready, "waiting": waiting, "done": len(self.done)}


def turns(ask: Callable[[str, int], Answer], slot: str) -> Iterator[RunKey]:
    """The runs a slot trains, in order: ``ask`` is the queue's ``next`` (through Ray)."""
    turn, pause = 0, 0.05
    while True:
        answer = ask(slot, turn)
        if answer is None:
            return
        if answer == WAIT:
            time.sleep(pause)
            pause = min(2 * pause, MAX_PAUSE_SECONDS)
            continue
        yield answer
        turn, pause = turn + 1, 0.05


def describe(status: dict[str, int], total: int) -> str:
    return (
        f"Runs: {status['running']} running, {status['ready']} ready, {status['waiting']} "
        f"waiting, {status['done']} of {total} done"
    )
