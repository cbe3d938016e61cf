"""DDP across two nodes through Ray: a Ray cluster made with the project's own code and token
on two namespaced nodes (tests.services.nodes: a head on node a, a worker on node b, 2 CPUs
each), and `scale-lth lottery` run on node a with `scaling.address=<head>`.

With `scaling.placement=spread` Ray puts one rank on each node, and gloo's full mesh must
connect them whatever the hostname resolves to. The nodes here share one hostname resolving to
127.0.0.1 (the case of issue 19), where every rank would advertise loopback unless told the
interface of its node's Ray address; nodes with hostnames of their own, resolving to their
addresses, are the easier case (tests/services/test_nodes.py makes both kinds). Another
Ray runs on the machine meanwhile (the suite's loopback head), as in the issue, where Ray
Train's placement-group cleaner then failed to tell which Ray instance was its own.

Storage: each node's Ray processes see a disk of their own at the cluster's ``stage`` folder
(``data.stage``: each node copies the data there and reads it from there), and node b's also at
``private`` (results written there by node a would be lost to node b: the storage probe must
refuse such an ``output_root``).

The module's tests share one cluster, and each lottery runs once (``Cluster`` keeps the
results)."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import psutil
import pytest
import torch
from mlflow import MlflowClient

from scale_lth.config import Config, load
from scale_lth.data import DataInfo
from scale_lth.data.info import content_digest
from scale_lth.orchestration.ray_cluster import ray_executable
from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey
from scale_lth.storage import load_torch
from tests.conftest import CONFIGS, ROOT
from tests.processes import SCALE_LTH
from tests.same_results import assert_same_results
from tests.services.listening import Listeners
from tests.services.nodes import Node, Nodes, require_namespaces
from tests.services.ray_nodes import RayCluster
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.ray_cluster]

CPUS_PER_NODE = 2
LOTTERY = [
    "training.duration=100it",  # long enough to interrupt
    "pruning.levels=1",
    "baselines.branches=[]",
    "scaling.num_workers=2",
    # one CPU (and so one torch thread) per rank in every run, so that packed and spread runs
    # compute each rank's share alike; one group at a time
    "scaling.cpus_per_worker=1",
    "scaling.concurrent_runs=1",
    "scaling.max_failures=0",
]
KEYS = [RunKey(0, 0), RunKey(0, 1)]


@dataclass
class Lottery:
    config: Config
    output: str  # the driver's stdout and stderr
    nodes: list[Node]  # the cluster's, head first
    staged: list[dict[str, tuple[int, int]]]  # per node: its staged files' inode and mtime

    @property
    def layout(self) -> Layout:
        return Layout(self.config.experiment_dir)

    def ranks(self, key: RunKey) -> list[dict]:
        return self.layout.read_metrics(key)["ranks"]


@dataclass
class Cluster:
    """The namespaced Ray cluster, started at its first use, and the lotteries run on it."""

    folder: Path
    data: Path
    stage: Path  # each node's own disk there
    private: Path  # node b's own disk there
    nodes: Nodes | None = None
    ray: RayCluster | None = None
    runs: dict[str, Lottery] = field(default_factory=dict)
    listeners: Listeners | None = None  # what listened on the nodes during the spread lottery

    def on(self) -> Nodes:
        """The nodes: a and b run the Ray cluster, c (a laptop) only submits to it."""
        if self.nodes is None:
            self.nodes = Nodes(3, "shared").__enter__()
            try:
                private = {0: [self.stage], 1: [self.stage, self.private]}
                ray = RayCluster(list(self.nodes)[:2], CPUS_PER_NODE, self.folder, private)
                self.ray = ray.__enter__()
            except BaseException:
                self.stop()
                raise
        return self.nodes

    def lottery(self, placement: str) -> Lottery:
        """configs/smoke.yaml, tiny, once per placement: spread submitted from the laptop with
        `ray job submit` and tracked in MLflow, what listens on the nodes meanwhile sampled;
        packed run on node a against the cluster, a reference."""
        if placement in self.runs:
            return self.runs[placement]
        nodes = list(self.on())
        results = self.folder / placement
        overrides = self.overrides(results, placement)
        if placement == "spread":
            overrides.append(f"tracking.uri=sqlite:///{results}/mlflow.db")
            with Listeners(nodes) as self.listeners:
                result = self.submit(overrides, self.ray.head.client_environment())
        else:
            overrides += ["tracking.enabled=false", f"scaling.address={self.ray.head.address}"]
            result = self.run_on_head(overrides)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-5000:]
        staged = [self.staged_files(index) for index in range(len(self.ray.started))]
        run = Lottery(load(CONFIGS / "smoke.yaml", overrides), output, nodes[:2], staged)
        self.runs[placement] = run
        return run

    def overrides(self, results: Path, placement: str) -> list[str]:
        """The module's lottery, into ``results``, its ranks placed as ``placement`` says."""
        return [
            f"data.path={self.data}",
            f"output_root={results}",
            f"scaling.placement={placement}",
            f"data.stage={self.stage}",
            *LOTTERY,
        ]

    def interrupted(self, name: str, interruptions) -> tuple[int, str, Layout]:
        """The spread lottery run on node a into folder ``name`` (Ray Train may restart its
        groups twice); each of ``interruptions`` (a run, a function) called once that run has
        a checkpoint. Its exit code, output and results."""
        overrides = [
            *self.overrides(self.folder / name, "spread"),
            "tracking.enabled=false",
            f"scaling.address={self.ray.head.address}",
            "scaling.max_failures=2",
            "training.checkpoint_every=20it",
        ]
        layout = Layout(load(CONFIGS / "smoke.yaml", overrides).experiment_dir)
        head = self.on()[0]
        running = subprocess.Popen(
            head.command([SCALE_LTH, "lottery", str(CONFIGS / "smoke.yaml"), *overrides]),
            env=head.environment(self.ray.head.client_environment()), cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            for key, interrupt in interruptions:
                checkpoint = layout.run_dir(key) / "resume.json"
                wait_for(partial(ready, checkpoint, running), 300, f"a checkpoint of {key}")
                interrupt()
            output = running.communicate(timeout=600)[0]
        finally:
            if running.poll() is None:
                running.kill()
        return running.returncode, output, layout

    def submit(self, overrides: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
        """The lottery submitted from the laptop (node c) to the cluster's job server."""
        return self.on()[2].run(
            [ray_executable(), "job", "submit", "--address", self.ray.head.dashboard, "--",
             "scale-lth", "lottery", str(CONFIGS / "smoke.yaml"), *overrides, "--quiet"],
            env=env,
            timeout=600,
        )  # fmt: skip

    def run_on_head(self, overrides: list[str]) -> subprocess.CompletedProcess:
        """``scale-lth lottery`` of configs/smoke.yaml run on node a against the cluster."""
        return self.on()[0].run(
            [SCALE_LTH, "lottery", str(CONFIGS / "smoke.yaml"), *overrides, "--quiet"],
            env=self.ray.head.client_environment(),
            timeout=600,
        )

    def seen_by(self, index: int, path: Path) -> Path:
        """``path`` as node ``index``'s Ray processes see it (through one of them)."""
        alive = sorted(pid for pid in self.ray.started[index].pids if psutil.pid_exists(pid))
        return Path(f"/proc/{alive[0]}/root{path}")

    def staged_files(self, index: int) -> dict[str, tuple[int, int]]:
        """Node ``index``'s staged data files (of every staged folder): inode, mtime."""
        found = {}
        for path in self.seen_by(index, self.stage).glob("*/*"):
            stat = path.stat()
            found[f"{path.parent.name}/{path.name}"] = (stat.st_ino, stat.st_mtime_ns)
        return found

    def stop(self) -> None:
        try:
            if self.ray is not None:
                self.ray.stop()
        finally:
            if self.nodes is not None:
                self.nodes.remove()
                assert self.nodes.leftovers() == [], "the nodes left something behind"
            self.ray, self.nodes = None, None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, digits_dir, ray_head):
    """``ray_head``: another Ray on this machine, on loopback, as in the issue."""
    require_namespaces()
    folder = tmp_path_factory.mktemp("multinode")
    made = Cluster(folder, digits_dir, folder / "stage", folder / "private")
    made.stage.mkdir()
    made.private.mkdir()
    try:
        yield made
    finally:
        made.stop()


def test_spread_places_one_rank_on_each_node_and_trains(cluster):
    run = cluster.lottery("spread")
    for key in KEYS:
        ranks = run.ranks(key)
        assert [rank["rank"] for rank in ranks] == [0, 1]
        assert {rank["address"] for rank in ranks} == {node.address for node in run.nodes}
        assert sorted(rank["host"] for rank in ranks) == sorted(n.hostname for n in run.nodes)
    assert sorted(run.layout.finished()) == KEYS
    # Ray Train's placement-group cleaner found its own cluster among the machine's Rays
    assert "Found multiple active Ray instances" not in run.output


def test_where_the_ranks_trained_is_an_mlflow_tag(cluster):
    run = cluster.lottery("spread")
    client = MlflowClient(run.config.tracking.uri)
    experiment = client.get_experiment_by_name(run.config.name)
    trained = client.search_runs([experiment.experiment_id], "tags.run_kind = 'level'")
    assert len(trained) == len(KEYS)
    for each in trained:
        ranks = run.ranks(RunKey(0, int(each.data.tags["level"])))
        expected = "; ".join(f"{rank['host']} {rank['address']}: {rank['rank']}" for rank in ranks)
        assert each.data.tags["ranks"] == expected


def test_two_nodes_train_the_same_ticket_as_one(cluster):
    """Spread over two nodes, the lottery's masks and weights equal, bit for bit, those of
    the same lottery with both ranks on one node. Each rank computes its share alike wherever
    it runs (the same data shard, one torch thread each on the same kind of CPU), and gloo's
    reduction order follows the ranks, not where they run: with two ranks each sum is a + b,
    exact whichever rank adds (floating-point addition is commutative; only its association
    depends on order, and that is fixed by the algorithm and the world size). So nothing is
    allowed to differ."""
    spread = cluster.lottery("spread")
    packed = cluster.lottery("pack")
    for key in KEYS:
        assert len({rank["address"] for rank in packed.ranks(key)}) == 1  # one node
        assert len({rank["address"] for rank in spread.ranks(key)}) == 2
        ours, theirs = (load_torch(run.layout.final_path(key)) for run in (spread, packed))
        assert ours.keys() == theirs.keys()
        for name in ours:
            assert torch.equal(ours[name], theirs[name]), f"{key} {name}"
        assert (
            spread.layout.read_metrics(key)["history"] == packed.layout.read_metrics(key)["history"]
        )
    assert Mask.load(spread.layout.mask_path(KEYS[1])) == Mask.load(
        packed.layout.mask_path(KEYS[1])
    )


def test_each_node_reads_the_data_from_a_copy_on_its_own_disk(cluster):
    """``data.stage``: each node copied the data once to its own disk (the folder the host
    sees there stays empty), the copies hold what info.json says, every rank read its node's,
    and a later lottery on the node reused it (not one file written again)."""
    spread = cluster.lottery("spread")
    packed = cluster.lottery("pack")
    info = DataInfo.load(cluster.data)
    (folder,) = {rank["data"] for key in KEYS for rank in spread.ranks(key)}
    assert Path(folder).parent == cluster.stage
    assert list(cluster.stage.iterdir()) == []
    for index in range(len(spread.nodes)):
        assert sorted(spread.staged[index]) == sorted(
            f"{Path(folder).name}/{name}"
            for name in ["info.json", *(f"{split}.beton" for split in info.splits)]
        )
        for split, digest in info.digests.items():
            assert content_digest(cluster.seen_by(index, Path(folder) / f"{split}.beton")) == digest
        assert packed.staged[index] == spread.staged[index]


def test_a_node_that_cannot_see_the_results_folder_is_named_before_any_work(cluster):
    """Results on node b's own disk would be a second, silent half of the experiment."""
    results = cluster.private / "results"
    result = cluster.run_on_head(
        [
            f"data.path={cluster.data}",
            f"output_root={results}",
            "tracking.enabled=false",
            f"scaling.address={cluster.ray.head.address}",
            *LOTTERY,
        ]  # fmt: skip
    )
    node_b = cluster.on()[1]
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"scale-lth: error: node {node_b.hostname} ({node_b.address}) does not see the results "
        f"folder output_root {results} the driver writes (a probe file written there is not "
        "there): put output_root and data.path on storage every node mounts at the same path "
        "(data may also be copied to each node)"
    )
    assert list(results.iterdir()) == []  # nothing written, the probe removed


def test_the_cluster_refuses_a_client_and_a_node_without_the_token(cluster, tmp_path):
    """From the laptop with no token anywhere (no variable, an empty home): `ray job submit`
    and `ray start --address` (a node joining) are both refused."""
    cluster.lottery("spread")  # the same laptop, with the token, was let in
    laptop = cluster.on()[2]
    bare = {
        **{name: value for name, value in cluster.ray.head.client_environment().items()
           if not name.startswith("RAY_AUTH")},
        "HOME": str(tmp_path),
        "RAY_gcs_server_port_wait_time_s": "1",  # `ray start` tries its GCS once, not for 20 s
    }  # fmt: skip
    results = tmp_path / "results"
    submitted = cluster.submit([f"data.path={cluster.data}", f"output_root={results}"], bare)
    assert submitted.returncode != 0
    assert "Unauthorized: Missing authentication token" in submitted.stderr
    assert not results.exists()  # nothing ran
    joined = laptop.run(
        [ray_executable(), "start", f"--address={cluster.ray.head.address}",
         f"--node-ip-address={laptop.address}", "--num-cpus=1", f"--temp-dir={tmp_path}/ray"],
        env=bare,
        timeout=300,
    )  # fmt: skip
    assert joined.returncode != 0
    assert "InvalidAuthToken" in joined.stderr
    assert laptop.pids() == []  # no Ray process stayed on the laptop


# Where Ray 2.60 listens on every interface of a node that is not on loopback, whatever it is
# told (docs/cluster.md says so, and how to narrow it): the gRPC servers of its GCS, raylets
# and of every Ray process (workers, actors, drivers), which require the cluster's token; the
# metrics endpoints of the dashboard, its agents and the autoscaler's monitor (read-only
# Prometheus pages); and torch's process-group store, hosted by rank 0's training worker.
RAY_ON_EVERY_INTERFACE = re.compile(
    r"^((gcs_server|raylet) .*|ray::\S+( \(gone\))?|python\S* \S*/scale-lth .*|"
    r"python\S*( -u)? \S*/ray/(dashboard/(dashboard|agent)|autoscaler/_private/monitor)\.py .*)$"
)


def test_nothing_listens_on_every_interface_of_a_node_but_rays_named_exceptions(cluster):
    cluster.lottery("spread")
    seen = cluster.listeners.seen
    head, worker, laptop = cluster.on()
    commands = " ".join(entry.command for entry in seen)
    for part in ("gcs_server", "raylet", "RayTrainWorker", "DashboardAgent", "scale-lth"):
        assert part in commands, f"{part} listens nowhere?"
    assert {entry.node for entry in seen} == {head, worker}  # the laptop serves nothing
    outside = [entry for entry in seen if not entry.is_local]
    assert all(entry.is_wildcard for entry in outside), outside  # never another's address
    unexpected = sorted({e.command for e in outside if not RAY_ON_EVERY_INTERFACE.match(e.command)})
    assert unexpected == [], "\n".join(unexpected)


def ready(checkpoint: Path, running: subprocess.Popen) -> bool:
    """The run has a checkpoint (or the lottery has ended)."""
    return checkpoint.is_file() or running.poll() is not None


def test_a_node_lost_mid_run_is_survived_with_the_same_ticket(cluster):
    """Every process of node b killed at once (its machine lost) while level 0 trains a rank
    there, then node b's Ray started again: Ray Train starts the worker group again (one of
    `scaling.max_failures`), the run continues from its checkpoint, and the lottery ends with
    the masks and weights of the uninterrupted one."""
    packed = cluster.lottery("pack")
    worker = cluster.on()[1]

    def lose_node_b():
        worker.lose()
        cluster.ray.restart_worker(1)

    code, output, layout = cluster.interrupted("lost", [(KEYS[0], lose_node_b)])
    assert code == 0, output[-5000:]
    assert output.count("Started training worker group") == 2, output[-5000:]
    assert layout.read_metrics(KEYS[0])["resumed_from"] >= 20  # from its checkpoint
    assert_same_results(layout, packed.layout)


def test_a_node_cut_off_for_30_s_mid_run_is_survived_with_the_same_ticket(cluster):
    """Node b's link down for 30 s while level 0 trains a rank there, then up: the lottery ends
    with the masks and weights of the uninterrupted one. Three endings, all seen here: the link
    returns before Ray's health checks declare node b dead, and the ranks' connections simply
    resume; node b is declared dead, and Ray Train starts the worker group again without it (one
    of `scaling.max_failures`; where that lands varies, as the ranks talk again for a moment after
    the link returns, before node b's raylet hears it was declared dead); or the level finishes
    over the returned link and node b is declared dead only while its group shuts down, which logs
    the dead actor and starts no group again. Last in the module: node b's Ray may stay down."""
    packed = cluster.lottery("pack")
    worker = cluster.on()[1]

    def cut_node_b():
        worker.link(up=False)
        try:
            time.sleep(30)
        finally:
            worker.link(up=True)

    code, output, layout = cluster.interrupted("cut", [(KEYS[0], cut_node_b)])
    assert code == 0, output[-5000:]
    declared_dead = "health check failed due to missing too many heartbeats" in output
    assert 1 <= output.count("Started training worker group") <= 1 + declared_dead, output[-5000:]
    assert_same_results(layout, packed.layout)
