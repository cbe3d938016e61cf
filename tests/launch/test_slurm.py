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
from tests.same_results import assert_same_results
from tests.test_bad_input import documented, matches
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration]

SMOKE = str(CONFIGS / "smoke.yaml")


def overrides(folder, slurm_cluster, mlflow_server, *more):
    """Where a task writes, which services it uses, and a run long enough to interrupt (one
    level: the dense network, then level 1's ticket and baselines). A task takes one CPU and
    trains on one worker, so that two tasks (the sweep's array, the graph's ticket and
    baseline after level 0) run side by side on the cluster's node, as on a user's."""
    return [
        f"output_root={folder / 'results'}",
        f"data_root={folder / 'data'}",
        f"tracking.uri={mlflow_server.uri}",
        "training.duration=200it",
        "training.checkpoint_every=25it",
        "pruning.levels=1",
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
        assert len(layout.finished()) == 1 + 4
        runs = client.search_runs(
            [experiment.experiment_id],
            f"tags.experiment_hash = '{config.hash}' and tags.run_kind != 'curve'",
        )
        assert len(runs) == 1 + 1 + 4  # the trunk's parent run and one run per level+branch
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


def start_now_once_requeued(job, env) -> None:
    """SLURM holds a requeued job back for a while (pending on its BeginTime), on a user's
    cluster as here; the test lets it start at once rather than wait that out."""

    def reason() -> str:
        listed = subprocess.run(["squeue", "-h", "-j", job.job_id, "-o", "%r"], env=env,
                                capture_output=True, text=True, check=True)  # fmt: skip
        return listed.stdout.strip()

    wait_for(lambda: reason() == "BeginTime", 120, "the requeued job to wait for its start")
    update = ["scontrol", "update", f"JobId={job.job_id}", "StartTime=now"]
    subprocess.run(update, env=env, check=True)


def test_a_requeued_task_resumes_from_its_checkpoint(sweep, slurm_cluster, mlflow_server, tmp_path):
    """`scontrol requeue` in the middle of level 1: the task starts again, continues the run it
    was training from its last checkpoint, and ends with the masks and weights of the sweep's
    uninterrupted seed-0 task."""
    swept_folder, swept_arguments, _ = sweep
    arguments = overrides(tmp_path, slurm_cluster, mlflow_server, "seed=0")
    layout = Layout(load(SMOKE, arguments).experiment_dir)
    job = executor(load(SMOKE, arguments), "slurm").submit(
        ExperimentTask(["lottery", SMOKE], arguments, ["--quiet"])
    )
    checkpoint = layout.run_dir(RunKey(0, 1)) / "resume.json"
    wait_for(checkpoint.is_file, 600, "a checkpoint of level 1")
    subprocess.run(["scontrol", "requeue", job.job_id], env=slurm_cluster.env, check=True)
    start_now_once_requeued(job, slurm_cluster.env)
    job.result()
    # the run in progress when the requeue landed (level 1's ticket, or the run after it when
    # the ticket's last steps won the race) went on from its checkpoint, not from zero
    resumed = [layout.read_metrics(key)["resumed_from"] for key in layout.finished()]
    resumed = [step for step in resumed if step is not None]
    assert len(resumed) == 1 and resumed[0] >= 25
    assert len(layout.finished()) == 1 + 4
    assert_same_results(layout, Layout(load(SMOKE, [*swept_arguments, "seed=0"]).experiment_dir))

    def attempts() -> list[str]:
        accounting = subprocess.run(
            ["sacct", "-j", job.job_id, "--duplicates", "--noheader", "-X", "--format=State"],
            env=slurm_cluster.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return accounting.stdout.split()

    wait_for(lambda: attempts() == ["REQUEUED", "COMPLETED"], 60, "both attempts in sacct")


def test_an_unknown_partition_is_refused_before_anything_is_submitted(slurm_cluster, tmp_path):
    logs = tmp_path / "logs"
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
    queue = subprocess.run(["squeue", "-h"], env=slurm_cluster.env, capture_output=True, text=True)
    assert queue.stdout.strip() == ""
