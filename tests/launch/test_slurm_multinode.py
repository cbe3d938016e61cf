"""SLURM jobs on a real cluster of two namespaced nodes (tests.services.slurm_nodes: slurmctld
and accounting on the controller, a slurmd on each node).

A sweep of two-node tasks: each task's first node starts a Ray head, the second joins it, the
lottery's DDP groups train with a rank on each node and log to a real MLflow server on the
controller, the jobs end COMPLETED in the accounting, and no Ray process is left on either
node. A two-node task requeued mid-level resumes from its checkpoint. The graph launcher's
one-node jobs (Ray on the node's loopback) run on whichever node SLURM gives them, after the
jobs they need. Each ends with the sweep's masks and weights."""

import re
import subprocess
import sys

import pytest
import submitit
from mlflow import MlflowClient

from scale_lth.config import load
from scale_lth.orchestration.slurm import ExperimentTask, executor
from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey
from tests.conftest import CONFIGS, ROOT
from tests.same_results import assert_same_results
from tests.services.mlflow_server import MlflowServer
from tests.services.nodes import CONTROLLER_ADDRESS, Nodes, require_namespaces
from tests.services.slurm_nodes import NamespacedSlurm
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slurm]

SMOKE = str(CONFIGS / "smoke.yaml")
CPUS_PER_NODE = 2
# a task of two nodes, one CPU and one rank on each: the sweep's two tasks run side by side
TWO_NODES = ["launcher.nodes=2", "launcher.cpus_per_task=1", "scaling.placement=spread"]
ONE_NODE = ["launcher.nodes=1", f"launcher.cpus_per_task={CPUS_PER_NODE}"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_namespaces()
    with Nodes(2, "own", controller=True) as nodes:
        folder = tmp_path_factory.mktemp("slurm-nodes")
        with NamespacedSlurm(folder, nodes, CPUS_PER_NODE) as slurm:
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("SLURM_CONF", str(slurm.conf))
                patch.setattr(submitit.slurm.slurm.SlurmJob, "_results_timeout_s", 5)
                yield list(nodes), slurm


@pytest.fixture(scope="module")
def tracking_server(cluster, tmp_path_factory):
    """A real MLflow server on the controller's address on the nodes' bridge."""
    with MlflowServer(tmp_path_factory.mktemp("mlflow"), host=CONTROLLER_ADDRESS) as server:
        yield server


def overrides(folder, data, slurm, *more: str) -> list[str]:
    """One level (the dense network, level 1's ticket and reinit), two ranks, no tracking,
    runs long enough to interrupt."""
    return [
        f"data.path={data}",
        f"output_root={folder / 'results'}",
        "tracking.enabled=false",
        "training.duration=200it",
        "training.checkpoint_every=25it",
        "pruning.levels=1",
        "baselines.branches=[reinit]",
        f"launcher.log_dir={folder / 'logs'}",
        f"launcher.partition={slurm.partition}",
        "launcher.timeout_min=30",
        "scaling.num_workers=2",
        "scaling.cpus_per_worker=1",
        *more,
    ]


def launch(script: str, folder, slurm, arguments: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "jobs" / script), *arguments],
        cwd=folder, env=slurm.env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sweep(cluster, tracking_server, digits_dir, tmp_path_factory):
    """jobs/smoke_sweep.py --wait with launcher.nodes=2, logging to the MLflow server: seeds 0
    and 1."""
    nodes, slurm = cluster
    folder = tmp_path_factory.mktemp("sweep")
    tracked = ["tracking.enabled=true", f"tracking.uri={tracking_server.uri}"]
    arguments = overrides(folder, digits_dir, slurm, *TWO_NODES, *tracked)
    return arguments, launch("smoke_sweep.py", folder, slurm, ["--wait", *arguments])


def accounted(slurm, jobs: list[str], field: str) -> list[str]:
    """``field`` of each job (of its array tasks, in order) in the accounting."""
    listed = slurm.run("sacct", "-n", "-X", "-P", "-j", ",".join(jobs), "-o", field).stdout
    return listed.split()


def test_a_sweep_of_two_node_tasks_trains_across_the_nodes_and_leaves_no_ray(
    cluster, sweep, tracking_server, tmp_path
):
    nodes, slurm = cluster
    arguments, result = sweep
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "2 of 2 tasks done" in result.stdout
    client = MlflowClient(tracking_server.uri)
    experiment = client.get_experiment_by_name("smoke")
    for seed in (0, 1):
        config = load(SMOKE, [*arguments, f"seed={seed}"])
        layout = Layout(config.experiment_dir)
        assert len(layout.finished()) == 3  # level 0, level 1 and its reinit
        for key in layout.finished():
            ranks = layout.read_metrics(key)["ranks"]
            assert {rank["address"] for rank in ranks} == {node.address for node in nodes}
            assert sorted(rank["host"] for rank in ranks) == sorted(n.hostname for n in nodes)
        runs = client.search_runs(
            [experiment.experiment_id],
            f"tags.experiment_hash = '{config.hash}' and tags.run_kind != 'curve'",
        )
        assert len(runs) == 1 + 3  # the trunk's parent run and one run per level and branch
        assert all(run.info.status == "FINISHED" for run in runs)
        ticket = next(r for r in runs if (r.data.tags.get("level"), r.data.tags.get("branch"))
                      == ("1", "main"))  # fmt: skip
        downloaded = client.download_artifacts(ticket.info.run_id, "mask.pt", str(tmp_path))
        assert Mask.load(downloaded) == Mask.load(layout.mask_path(RunKey(0, 1)))
    jobs = [line.split()[0] for line in result.stdout.splitlines() if "DONE" in line]
    assert len(jobs) == 2
    wait_for(lambda: accounted(slurm, jobs, "State") == ["COMPLETED"] * 2, 60, "COMPLETED")
    assert accounted(slurm, jobs, "NodeList") == ["node-a,node-b"] * 2
    wait_until_only_slurm_runs(nodes, slurm)


def wait_until_only_slurm_runs(nodes, slurm) -> None:
    """No process of a job (its Ray above all) is left on any node."""
    daemons = set(slurm.pids.values())
    for node in nodes:
        wait_for(lambda node=node: set(node.pids()) <= daemons, 30, f"{node.hostname} emptied")


def test_a_requeued_two_node_task_resumes_from_its_checkpoint(cluster, sweep, digits_dir, tmp_path):
    """`scontrol requeue` in the middle of level 1: both nodes' tasks start again as attempt 1
    (a new head and token under the attempt's number, joined by the second node), the run in
    progress continues from its last checkpoint, and the task ends with the masks and weights of
    the sweep's uninterrupted seed-0 task, leaving no Ray behind."""
    nodes, slurm = cluster
    swept, _ = sweep
    arguments = overrides(tmp_path, digits_dir, slurm, *TWO_NODES, "seed=0")
    config = load(SMOKE, arguments)
    layout = Layout(config.experiment_dir)
    job = executor(config, "slurm").submit(
        ExperimentTask(["lottery", SMOKE], arguments, ["--quiet"])
    )
    checkpoint = layout.run_dir(RunKey(0, 1)) / "resume.json"
    wait_for(checkpoint.is_file, 600, "a checkpoint of level 1")
    slurm.requeue_and_start_now(job.job_id)
    summary, follower = job.results()  # the first node's task leads, the second's follows
    assert follower == {}
    assert summary["nodes"] == 2 and summary["head"].split(":")[0] == nodes[0].address
    # the run in progress when the requeue landed (level 1's ticket, or the run after it when
    # the ticket's last steps won the race) went on from its checkpoint, not from zero
    resumed = [layout.read_metrics(key)["resumed_from"] for key in layout.finished()]
    resumed = [step for step in resumed if step is not None]
    assert len(resumed) == 1 and resumed[0] >= 25
    assert len(layout.finished()) == 3
    assert_same_results(layout, Layout(load(SMOKE, [*swept, "seed=0"]).experiment_dir))
    coordination = sorted(path.name for path in job.paths.folder.glob(f"{job.job_id}_*_ray_*"))
    attempt = f"{job.job_id}_1_ray_"
    assert coordination == [f"{attempt}done", f"{attempt}head", f"{attempt}token"]
    both = ["REQUEUED", "COMPLETED"]
    wait_for(lambda: slurm.attempts(job.job_id) == both, 60, "both attempts in sacct")
    wait_until_only_slurm_runs(nodes, slurm)


def test_the_graph_launchers_jobs_run_where_slurm_puts_them_after_what_they_need(
    cluster, sweep, digits_dir, tmp_path
):
    """jobs/lottery_graph.py: level 0's ticket, then level 1's ticket and an array of its
    baselines (reinit), each after level 0 (SLURM's afterok, read back while they wait); the
    two after level 0 each fill a node, so SLURM runs them on different nodes at once. They end
    with the masks and weights of the sweep's seed-0 task, which trained its two ranks across
    both nodes."""
    nodes, slurm = cluster
    swept, _ = sweep
    arguments = overrides(tmp_path, digits_dir, slurm, *ONE_NODE, "seed=0")
    result = launch("lottery_graph.py", tmp_path, slurm, [SMOKE, *arguments])
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = [line.split()[0] for line in result.stdout.splitlines() if "--levels" in line]
    assert len(jobs) == 2 + 1  # two tickets, reinit at level 1
    for job in jobs[1:]:
        shown = slurm.run("scontrol", "show", "job", "-o", job).stdout
        assert re.search(rf"JobState=PENDING .*Dependency=afterok:{jobs[0]}\b", shown), shown
    complete = ["COMPLETED"] * 3
    wait_for(lambda: accounted(slurm, jobs, "State") == complete, 900, "the graph to complete")
    where = accounted(slurm, jobs, "NodeList")
    assert set(where) <= {node.hostname for node in nodes}
    assert where[1] != where[2]  # level 1's ticket and reinit, side by side
    first = tmp_path / "logs" / jobs[0]  # level 0's job, alone on its node
    log = "".join(path.read_text() for path in sorted(first.glob(f"{jobs[0]}_0_log.*")))
    assert "Ray head at 127.0.0.1:" in log  # one node: its Ray stays on loopback
    assert "Started training worker group of size 2" in log
    layout = Layout(load(SMOKE, arguments).experiment_dir)
    assert len(layout.finished()) == 3
    for key in layout.finished():
        assert len({rank["host"] for rank in layout.read_metrics(key)["ranks"]}) == 1
    assert_same_results(layout, Layout(load(SMOKE, [*swept, "seed=0"]).experiment_dir))
