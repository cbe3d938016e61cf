"""submitit against the real single-node SLURM cluster of `tests.services.slurm`."""

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import cloudpickle
import psutil
import pytest
import submitit

from tests.services.slurm import SlurmCluster

pytestmark = [pytest.mark.integration, pytest.mark.slurm]  # clusters of its own

# the jobs unpickle this module's functions by value, whatever their working directory
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def square(x: int) -> int:
    return x * x


def fail() -> None:
    raise ValueError("boom from the cluster")


def sleep_a_minute(pid_file: Path | None = None) -> None:
    if pid_file is not None:
        pid_file.write_text(str(os.getpid()))
    time.sleep(60)


@contextmanager
def clients_of(cluster: SlurmCluster):
    """SLURM_CONF pointing at ``cluster`` and submitit's wait for a missing result shortened."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", cluster.env["SLURM_CONF"])
        patch.setattr(submitit.slurm.slurm.SlurmJob, "_results_timeout_s", 3)
        yield


def executor(cluster: SlurmCluster, folder: Path) -> submitit.AutoExecutor:
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    ex.update_parameters(slurm_partition=cluster.partition, cpus_per_task=1, timeout_min=5)
    return ex


def wait_until(condition, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.5)


def wait_for_state(job: submitit.Job, prefix: str) -> str:
    """Poll the job's accounting state (it lags) until it starts with ``prefix``."""
    wait_until(lambda: job.state.startswith(prefix))
    return job.state


def processes_of(cluster: SlurmCluster) -> set[psutil.Process]:
    """Every process whose environment names the cluster's slurm.conf (its daemons, started with
    `SlurmCluster.env`, and the jobs' scripts, srun and Python) and their ancestors (the
    slurmstepds, started with an empty environment), but this process, its ancestors and init."""
    this = psutil.Process()
    found = set()
    for process in psutil.process_iter():
        try:
            if process.environ().get("SLURM_CONF") == str(cluster.conf):
                found |= {process, *process.parents()}
        except psutil.Error:
            continue
    return found - {this, *this.parents(), psutil.Process(1)}


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as started, clients_of(started):
        yield started


def test_job_array_returns_every_result(cluster, tmp_path):
    jobs = executor(cluster, tmp_path).map_array(square, [1, 2, 3])
    assert [job.result() for job in jobs] == [1, 4, 9]


def test_exception_of_a_failing_job_comes_back(cluster, tmp_path):
    job = executor(cluster, tmp_path).submit(fail)
    assert "boom from the cluster" in str(job.exception())
    with pytest.raises(submitit.core.utils.FailedJobError, match="boom from the cluster"):
        job.result()


def test_cancelled_job_ends_cancelled(cluster, tmp_path):
    job = executor(cluster, tmp_path).submit(sleep_a_minute)
    job.cancel()
    assert wait_for_state(job, "CANCELLED").startswith("CANCELLED")


def test_stop_leaves_no_process_behind(tmp_path):
    pid_file = tmp_path / "job.pid"
    with SlurmCluster(tmp_path / "cluster") as cluster, clients_of(cluster):
        job = executor(cluster, tmp_path / "jobs").submit(sleep_a_minute, pid_file)
        assert wait_for_state(job, "RUNNING") == "RUNNING"
        wait_until(lambda: pid_file.exists() and pid_file.read_text())
        started = processes_of(cluster)
        job_pid = int(pid_file.read_text())
        assert {*cluster.pids.values(), job_pid} <= {process.pid for process in started}
        assert any(process.name() == "slurmstepd" for process in started)
    assert not cluster.pids
    assert [process for process in started if alive(process)] == []
