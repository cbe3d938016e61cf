"""The run graph and the queue that hands its ready runs to slots, against the dependencies
written out by hand."""

from scale_lth.lottery.graph import Reads, RunGraph
from scale_lth.lottery.job import Job
from scale_lth.orchestration.run_queue import WAIT, RunQueue, turns
from scale_lth.results import Layout, RunKey, instability_branch

BRANCHES = ["reinit", "random_prune", "snip"]


def lottery(levels=3, pruning="iterative", mode="weights", finished=()) -> RunGraph:
    keys = Job([0], range(levels + 1), BRANCHES).keys()
    return RunGraph.of(keys, set(finished), Reads(pruning, mode))


def test_iterative_tickets_chain_and_each_level_s_baselines_wait_for_the_previous_ticket():
    graph = lottery()
    assert graph.waits_for[RunKey(0, 0)] == set()
    assert graph.waits_for[RunKey(0, 1)] == {RunKey(0, 0)}
    assert graph.waits_for[RunKey(0, 3)] == {RunKey(0, 2), RunKey(0, 0)}
    assert graph.waits_for[RunKey(0, 3, "reinit")] == {RunKey(0, 2)}  # fresh weights
    assert graph.waits_for[RunKey(0, 3, "snip")] == {RunKey(0, 2), RunKey(0, 0)}  # init weights
    assert graph.critical_path() == [RunKey(0, level) for level in range(4)]
    assert graph.chain[RunKey(0, 0)] == 4 and graph.chain[RunKey(0, 3, "snip")] == 1


def test_instability_copies_wait_for_their_start_and_auto_rewinding_for_the_measurements():
    job = Job([0], range(3), BRANCHES, instability_starts=[(0, "0it"), (0, "5it"), (1, "rewind")])
    graph = RunGraph.of(job.keys(), set(), Reads(candidates=("0it", "5it")))
    paths = {RunKey(0, 0, instability_branch("path", at)) for at in ("0it", "5it")}
    for at in ("0it", "5it"):  # the dense run saves the copies' weights; the path reads both
        copies = {RunKey(0, 0, instability_branch(part, at)) for part in "ab"}
        assert all(graph.waits_for[copy] == {RunKey(0, 0)} for copy in copies)
        assert graph.waits_for[RunKey(0, 0, instability_branch("path", at))] == copies
    # every run from the rewind point waits for the measurements it is chosen from
    assert graph.waits_for[RunKey(0, 1)] == {RunKey(0, 0)} | paths
    assert graph.waits_for[RunKey(0, 1, "random_prune")] == {RunKey(0, 0)} | paths
    assert (
        graph.waits_for[RunKey(0, 1, instability_branch("a", "rewind"))] == {RunKey(0, 0)} | paths
    )
    assert graph.waits_for[RunKey(0, 2, "reinit")] == {RunKey(0, 1)}  # fresh weights, step 0
    path = graph.critical_path()
    assert path[0] == RunKey(0, 0) and path[-2:] == [RunKey(0, 1), RunKey(0, 2)]
    fixed = RunGraph.of(job.keys(), set(), Reads())  # a fixed k waits for nothing measured
    assert fixed.waits_for[RunKey(0, 1)] == {RunKey(0, 0)}


def test_ready_runs_start_trunk_first_and_finished_runs_are_left_out():
    graph = lottery()
    done = {RunKey(0, 0), RunKey(0, 1)}
    ready = graph.ready(done, taken=done)
    assert ready[0] == RunKey(0, 2)  # the critical path first
    assert set(ready[1:]) == {RunKey(0, level, b) for level in (1, 2) for b in BRANCHES}
    resumed = lottery(finished=done)
    assert len(resumed) == 13 - 2 and resumed.waits_for[RunKey(0, 2)] == frozenset()


def test_oneshot_levels_wait_only_for_the_dense_network():
    graph = lottery(pruning="oneshot")
    for level in (1, 2, 3):
        assert graph.waits_for[RunKey(0, level)] == {RunKey(0, 0)}
    assert len(graph.critical_path()) == 2


def test_learning_rate_rewinding_reads_the_previous_level_and_the_step_k_kept_with_level_0():
    graph = lottery(mode="lr")
    assert graph.waits_for[RunKey(0, 2)] == {RunKey(0, 1), RunKey(0, 0)}
    assert graph.waits_for[RunKey(0, 2, "reinit")] == {RunKey(0, 1)}


def test_two_slots_take_every_run_once_in_dependency_order(tmp_path):
    """Two slots drain the queue; a run is handed out only after the runs it waits for are
    on disk, and each is handed out once. Every rank of a slot gets the same answer."""
    graph = lottery()
    layout = Layout(tmp_path)
    queue = RunQueue(graph, tmp_path)
    order: list[RunKey] = []
    slots = {"a": 0, "b": 0}
    while True:
        progress = False
        for slot in slots:
            answer = queue.next(slot, slots[slot])
            assert queue.next(slot, slots[slot]) == answer  # the slot's other ranks
            if answer in (WAIT, None):
                continue
            assert all(key in order for key in graph.waits_for[answer])
            order.append(answer)
            layout.write_metrics(answer, {"done": True})
            slots[slot] += 1
            progress = True
        if not progress and all(queue.next(slot, turn) is None for slot, turn in slots.items()):
            break
    assert sorted(order) == sorted(graph.waits_for)
    assert queue.status() == {"running": 0, "elsewhere": 0, "ready": 0, "waiting": 0, "done": 13}


def test_a_restarted_slot_meets_its_runs_again_and_nobody_else_takes_them(tmp_path):
    graph = lottery(levels=1)
    queue = RunQueue(graph, tmp_path)
    first = queue.next("a", 0)
    assert first == RunKey(0, 0)
    assert queue.next("b", 0) == WAIT  # everything waits for level 0
    assert queue.next("a", 0) == first  # "a" restarted: the same run, to resume
    queue.stop()
    assert list(turns(queue.next, "b")) == []
