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

from scale_lth.console import say
from scale_lth.locks import FileLock, describe
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
        self.elsewhere: set[RunKey] = set()  # locked by another invocation when it was ready
        self.done: set[RunKey] = set()
        self.locks: dict[RunKey, FileLock] = {}  # the runs this invocation trains
        self.stopped = False

    def _refresh(self) -> None:
        """Runs whose results are now on disk are done (this invocation's locks on them go);
        a run another invocation held is ready again, and this one's, once its lock is free
        (its holder let it go unfinished, or is gone)."""
        for key in self.taken - self.done:
            if self.layout.is_done(key):
                self.done.add(key)
                if key in self.locks:
                    self.locks.pop(key).release()
        for key in list(self.elsewhere):
            if key in self.done:
                self.elsewhere.discard(key)
            elif self._lock(key):
                self.elsewhere.discard(key)
                self.taken.discard(key)

    def _lock(self, key: RunKey) -> bool:
        """Hold ``key``'s lock for this invocation (one writer per run, whoever asks); False
        if another process holds it."""
        if key in self.locks:
            return True
        lock = FileLock(self.layout.lock_path(key))
        if not lock.acquire():
            return False
        if lock.left_by is not None:
            say(f"[{key}] taking it over from {describe(lock.left_by)}, which is gone")
        self.locks[key] = lock
        return True

    def next(self, slot: str, turn: int) -> Answer:
        """The slot's ``turn``-th run; None when every run is done or handed to a slot of this
        invocation (or the queue is stopped); WAIT when none is ready yet, or the ones left
        are trained by another invocation."""
        if (slot, turn) in self.answers:
            return self.answers[(slot, turn)]
        self._refresh()
        ours = self.taken - self.elsewhere
        if self.stopped or len(ours | self.done) == len(self.graph):
            answer: RunKey | None = None
        else:
            for candidate in self.graph.ready(self.done, self.taken):
                self.taken.add(candidate)
                if self._lock(candidate):
                    answer = candidate
                    break
                self.elsewhere.add(candidate)
            else:
                return WAIT
        self.answers[(slot, turn)] = answer
        return answer

    def stop(self) -> None:
        """Hand out nothing more (a slot failed for good): the others end after their run."""
        self.stopped = True

    def status(self) -> dict[str, int]:
        self._refresh()
        elsewhere = len(self.elsewhere - self.done)
        running = len(self.taken - self.done) - elsewhere
        ready = len(self.graph.ready(self.done, self.taken))
        waiting = len(self.graph) - len(self.done) - running - ready - elsewhere
        return {
            "running": running,
            "elsewhere": elsewhere,
            "ready": ready,
            "waiting": waiting,
            "done": len(self.done),
        }

    def holders(self) -> list[str]:
        """Who trains the runs another invocation holds."""
        found = {describe(FileLock(self.layout.lock_path(k)).holder()) for k in self.elsewhere}
        return sorted(found)


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


def describe_status(status: dict[str, int], total: int, holders: list[str]) -> str:
    elsewhere = (
        f"{status['elsewhere']} trained by {', '.join(holders)}, " if status["elsewhere"] else ""
    )
    return (
        f"Runs: {status['running']} running, {elsewhere}{status['ready']} ready, "
        f"{status['waiting']} waiting, {status['done']} of {total} done"
    )
