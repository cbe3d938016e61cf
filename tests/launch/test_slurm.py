"""Launching on a real single-node SLURM cluster (slurmctld, slurmd, slurmdbd, MariaDB, munge)
through submitit, each task running a Ray cluster inside its allocation, logging to a real
MLflow server: a failing task, a cancelled one, an unknown partition. Sweeps, a requeue and
the graph launcher run on a SLURM cluster of two nodes (tests/launch/test_slurm_multinode.py)."""

import json
import subprocess
import sys

import pytest

from scale_lth.config import load
from scale_lth.orchestration.slurm import ExperimentTask, executor
from tests.conftest import CONFIGS, ROOT
from tests.test_bad_input import documented, matches
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration]

SMOKE = str(CONFIGS / "smoke.yaml")


def overrides(folder, slurm_cluster, mlflow_server, *more):
    """Where a task writes, which services it uses, and one level (the dense network, then
    level 1's ticket and reinit), on one CPU and one worker."""
    return [
        f"output_root={folder / 'results'}",
        f"data_root={folder / 'data'}",
        f"tracking.uri={mlflow_server.uri}",
        "pruning.levels=1",
        "baselines.branches=[reinit]",
        f"launcher.log_dir={folder / 'logs'}",
        f"launcher.partition={slurm_cluster.partition}",
        "launcher.cpus_per_task=1",
        "scaling.num_workers=1",
        "launcher.timeout_min=30",
        *more,
    ]


def state(job) -> str:
    """The job's accounting state now (``job.state`` refreshes only every ~30 s)."""
    return job.get_info(mode="force").get("State", "UNKNOWN")


def test_a_failing_task_reports_its_exception(slurm_cluster, mlflow_server, tmp_path):
    arguments = overrides(tmp_path, slurm_cluster, mlflow_server)
    missing = str(tmp_path / "missing.yaml")
    job = executor(load(SMOKE, arguments), "slurm").submit(
        ExperimentTask(["lottery", missing], arguments, ["--quiet"])
    )
    with pytest.raises(Exception, match="no such config file"):
        job.result()
    assert "no such config file" in str(job.exception())
    wait_for(lambda: state(job) == "FAILED", 30, "state FAILED")


def ray_pids(job) -> dict:
    path = job.paths.folder / f"{job.job_id}_ray_pids_0.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def alive(pids) -> list[int]:
    import psutil

    return [
        pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
    ]


def test_a_cancelled_task_shows_cancelled_and_leaves_no_ray_behind(
    slurm_cluster, mlflow_server, tmp_path
):
    arguments = overrides(tmp_path, slurm_cluster, mlflow_server, "training.duration=100000it")
    job = executor(load(SMOKE, arguments), "slurm").submit(
        ExperimentTask(["lottery", SMOKE], arguments, ["--quiet"])
    )
    wait_for(lambda: ray_pids(job), 300, "the task's Ray head")
    pids = [pid for pid, _ in ray_pids(job)["processes"]]
    assert alive(pids)
    job.cancel()
    wait_for(lambda: state(job).startswith("CANCELLED"), 60, "state CANCELLED")
    wait_for(lambda: not alive(pids), 30, "the Ray processes to stop")


def every_job(slurm_cluster) -> list[str]:
    """Every job the cluster's accounting has ever had."""
    listed = slurm_cluster.run("sacct", "-n", "-X", "-a", "-S", "2000-01-01", "-o", "JobIDRaw")
    return listed.stdout.split()


def test_an_unknown_partition_is_refused_before_anything_is_submitted(slurm_cluster, tmp_path):
    logs = tmp_path / "logs"
    before = every_job(slurm_cluster)
    result = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "smoke_sweep.py"), "launcher.partition=nope",
         f"launcher.log_dir={logs}", f"output_root={tmp_path / 'results'}"],
        cwd=tmp_path, env=slurm_cluster.env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith("error: "), line
    assert matches(documented()["unknown-slurm-partition"], line.removeprefix("error: ")), line
    assert "debug" in line  # the partitions it has
    assert not logs.exists() and not (tmp_path / "results").exists()
    assert every_job(slurm_cluster) == before
