"""Launching on a real single-node SLURM cluster (slurmctld, slurmd, slurmdbd, MariaDB, munge)
through submitit, each task running a Ray cluster inside its allocation, logging to a real
MLflow server."""

import json
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from scale_lth.config import load
from scale_lth.orchestration.slurm import ExperimentTask, executor
from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey
from tests.conftest import CONFIGS, ROOT
from tests.test_bad_input import documented, matches
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration]

SMOKE = str(CONFIGS / "smoke.yaml")


def overrides(folder, slurm_cluster, mlflow_server, *more):
    """Where a task writes, which services it uses, and one level (the dense network, then
    level 1's ticket and reinit). A task takes one CPU and trains on one worker, so that the
    sweep's two tasks run side by side on the cluster's node, as on a user's. (A requeued task
    is tested on two nodes: tests/launch/test_slurm_multinode.py.)"""
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


@pytest.fixture(scope="module")
def sweep(slurm_cluster, mlflow_server, tmp_path_factory):
    """jobs/smoke_sweep.py --wait: a job array of two tasks (seeds 0 and 1)."""
    folder = tmp_path_factory.mktemp("sweep")
    arguments = overrides(folder, slurm_cluster, mlflow_server)
    result = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "smoke_sweep.py"), "--wait", *arguments],
        cwd=folder,
        env=slurm_cluster.env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return folder, arguments, result


def test_a_sweep_array_finishes_every_task_and_logs_to_the_mlflow_server(sweep, mlflow_server):
    folder, arguments, result = sweep
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "2 of 2 tasks done" in result.stdout
    job_ids = [line.split()[0] for line in result.stdout.splitlines() if "seed=" in line][:2]
    assert len({job_id.split("_")[0] for job_id in job_ids}) == 1  # one array
    client = MlflowClient(mlflow_server.uri)
    experiment = client.get_experiment_by_name("smoke")
    for seed in (0, 1):
        config = load(SMOKE, [*arguments, f"seed={seed}"])
        layout = Layout(config.experiment_dir)
        assert len(layout.finished()) == 1 + 2
        runs = client.search_runs(
            [experiment.experiment_id],
            f"tags.experiment_hash = '{config.hash}' and tags.run_kind != 'curve'",
        )
        assert len(runs) == 1 + 1 + 2  # the trunk's parent run and one run per level+branch
        assert all(run.info.status == "FINISHED" for run in runs)
        ticket = next(
            r
            for r in runs
            if r.data.tags.get("level") == "1" and r.data.tags.get("branch") == "main"
        )
        downloaded = client.download_artifacts(ticket.info.run_id, "mask.pt", str(folder))
        assert Mask.load(downloaded) == Mask.load(layout.mask_path(RunKey(0, 1)))


def test_a_one_node_job_starts_ray_inside_and_trains_with_two_workers(
    slurm_cluster, mlflow_server, tmp_path
):
    more = [f"launcher.cpus_per_task={slurm_cluster.cpus}", "scaling.num_workers=2",
            "scaling.parallelism=ddp", "tracking.enabled=false"]  # fmt: skip
    arguments = overrides(tmp_path, slurm_cluster, mlflow_server, *more)
    job = executor(load(SMOKE, arguments), "slurm").submit(
        ExperimentTask(["train", SMOKE], arguments, ["--quiet"])
    )
    summary = job.result()
    assert summary["nodes"] == 1 and summary["head"].startswith("127.0.0.1:")
    log = job.paths.stdout.read_text() + job.paths.stderr.read_text()
    assert f"Ray head at {summary['head']}" in log
    assert "Started training worker group of size 2" in log
    assert Layout(load(SMOKE, arguments).experiment_dir).is_done(RunKey(0, 0))
    wait_for(lambda: state(job) == "COMPLETED", 30, "state COMPLETED")  # accounting lags


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
