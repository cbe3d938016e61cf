"""Two invocations on one experiment each hand their slots only runs they hold the lock of:
a run another invocation trains is handed to nobody until it is done (its dependents are then
ready) or its holder lets it go or dies (then it is taken over)."""

from scale_lth.lottery.graph import Reads, RunGraph
from scale_lth.lottery.job import Job
from scale_lth.orchestration.run_queue import WAIT, RunQueue
from scale_lth.results import Layout, RunKey


def graph() -> RunGraph:
    return RunGraph.of(Job([0], range(3), ["reinit"]).keys(), set(), Reads())


def test_a_run_held_by_one_invocation_is_handed_by_no_other(tmp_path):
    layout = Layout(tmp_path)
    first, second = RunQueue(graph(), tmp_path), RunQueue(graph(), tmp_path)
    assert first.next("a", 0) == RunKey(0, 0)
    assert second.next("a", 0) == WAIT  # level 0 is the other's; everything else waits on it
    assert second.status()["elsewhere"] == 1
    layout.write_metrics(RunKey(0, 0), {"done": True})  # the other finishes it
    taken = {first.next("a", 1), second.next("a", 1)}
    assert taken == {RunKey(0, 1), RunKey(0, 1, "reinit")}  # each hands one of the two
    for key in taken:
        layout.write_metrics(key, {"done": True})
    assert {first.next("a", 2), second.next("a", 2)} == {RunKey(0, 2), RunKey(0, 2, "reinit")}


def test_a_run_its_holder_let_go_unfinished_is_taken_over(tmp_path):
    first, second = RunQueue(graph(), tmp_path), RunQueue(graph(), tmp_path)
    assert first.next("a", 0) == RunKey(0, 0)
    assert second.next("a", 0) == WAIT
    first.locks.pop(RunKey(0, 0)).release()  # as when its process ends
    assert second.next("a", 0) == RunKey(0, 0)
    assert second.status() == {"running": 1, "elsewhere": 0, "ready": 0, "waiting": 4, "done": 0}
