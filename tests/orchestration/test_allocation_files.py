"""The files that coordinate a SLURM job's nodes. A requeued job keeps its id: the nodes of a
new attempt never read the head address or the end of a dead attempt, and a follower whose
head stops answering leaves in one line instead of idling until the time limit. A requeued
task first stops what its killed attempt left on the node, and only that: the processes that
attempt recorded (host, PID and start time), never a process that merely has the PID now or
a Ray-like name, and nothing recorded on another host."""

import json
import shutil
import socket
import subprocess
import threading

import psutil
import pytest

from scale_lth.orchestration.slurm import AllocationFiles


def test_an_attempt_reads_its_own_head_and_clears_those_of_earlier_attempts(tmp_path):
    dead, current = AllocationFiles(tmp_path, "7", 0), AllocationFiles(tmp_path, "7", 1)
    dead.announce("10.0.0.1:6379")
    dead.finish()
    current.announce("10.0.0.2:6379")
    assert current.head_address() == "10.0.0.2:6379"
    assert dead.token != current.token
    current.stop_leftovers(0)  # the first node of attempt 1 starts
    assert sorted(path.name for path in tmp_path.iterdir()) == ["7_1_ray_head"]


def test_a_follower_leaves_when_its_head_stops_answering(tmp_path):
    """Attempt 0 ended (its end is on disk); a follower of attempt 1 waits for its own head,
    which is gone: it leaves, in one line, instead of taking attempt 0's end for its own."""
    AllocationFiles(tmp_path, "7", 0).finish()
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        gone = f"127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(RuntimeError, match=f"the Ray head at {gone} has not answered for 0.5 s"):
        AllocationFiles(tmp_path, "7", 1).wait_until_finished(gone, lost_after=0.5)


def test_a_follower_waits_while_its_head_answers_until_the_driver_is_done(tmp_path):
    files = AllocationFiles(tmp_path, "7", 1)
    with socket.socket() as head:
        head.bind(("127.0.0.1", 0))
        head.listen()
        address = f"127.0.0.1:{head.getsockname()[1]}"
        done = threading.Timer(3.0, files.finish)  # the driver ends after the first checks
        done.start()
        files.wait_until_finished(address, lost_after=0.5)
        assert not done.is_alive()


def raylets(folder, count: int) -> list[subprocess.Popen]:
    """Processes named ``raylet`` (a copy of sleep), as Ray's daemons are."""
    program = folder / "raylet"
    shutil.copy(shutil.which("sleep"), program)
    return [subprocess.Popen([str(program), "300"]) for _ in range(count)]


def record(files: AllocationFiles, node: int, host: str, processes: list[tuple[int, float]]):
    path = files.folder / f"{files.job_id}_ray_pids_{node}.json"
    path.write_text(json.dumps({"host": host, "marker": "/nonexistent/ray-head-gone",
                                "processes": [list(p) for p in processes]}))  # fmt: skip
    return path


def running(process: subprocess.Popen) -> bool:
    return process.poll() is None


@pytest.mark.integration
def test_only_the_processes_the_killed_attempt_started_here_are_stopped(tmp_path):
    files = AllocationFiles(tmp_path, "4242")
    leftover, impostor, elsewhere = raylets(tmp_path, 3)
    try:
        started = {
            p.pid: psutil.Process(p.pid).create_time() for p in (leftover, impostor, elsewhere)
        }
        here = socket.gethostname()
        # node 0's attempt left a raylet; the PID it recorded for another one now names a new
        # process (started later: the system reused the PID)
        record(files, 0, here, [(leftover.pid, started[leftover.pid]),
                                (impostor.pid, started[impostor.pid] - 100.0)])  # fmt: skip
        # node 1's attempt ran on another host (whatever its PIDs and times, none is here)
        other = record(files, 1, "another-host", [(elsewhere.pid, started[elsewhere.pid])])
        files.stop_leftovers(0)
        leftover.wait(timeout=30)  # a hang guard
        assert not running(leftover)
        assert running(impostor)
        files.stop_leftovers(1)
        assert running(elsewhere) and not other.exists()
        assert list(tmp_path.glob("*_ray_pids_*.json")) == []
    finally:
        for process in (leftover, impostor, elsewhere):
            process.kill()
            process.wait()
