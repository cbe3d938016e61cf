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

The module's tests share one cluster, and each lottery runs once (``Cluster`` keeps the
results)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from scale_lth.config import Config, load
from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey
from scale_lth.storage import load_torch
from tests.conftest import CONFIGS
from tests.processes import SCALE_LTH
from tests.services.nodes import Node, Nodes, require_namespaces
from tests.services.ray_nodes import RayCluster

pytestmark = [pytest.mark.integration, pytest.mark.ray_cluster]

CPUS_PER_NODE = 2
LOTTERY = [
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
    nodes: Nodes | None = None
    ray: RayCluster | None = None
    runs: dict[str, Lottery] = field(default_factory=dict)

    def on(self) -> Nodes:
        """The nodes of the running cluster."""
        if self.nodes is None:
            self.nodes = Nodes(2, "shared").__enter__()
            try:
                self.ray = RayCluster(list(self.nodes), CPUS_PER_NODE, self.folder).__enter__()
            except BaseException:
                self.stop()
                raise
        return self.nodes

    def lottery(self, placement: str) -> Lottery:
        """configs/smoke.yaml, tiny, run on node a against the cluster (once per placement);
        tracked in MLflow where spread, the packed run being a reference."""
        if placement in self.runs:
            return self.runs[placement]
        nodes = self.on()
        results = self.folder / placement
        tracking = (
            [f"tracking.uri=sqlite:///{results}/mlflow.db"]
            if placement == "spread"
            else ["tracking.enabled=false"]
        )
        overrides = [
            f"data.path={self.data}",
            f"output_root={results}",
            *tracking,
            f"scaling.address={self.ray.head.address}",
            f"scaling.placement={placement}",
            *LOTTERY,
        ]
        result = nodes[0].run(
            [SCALE_LTH, "lottery", str(CONFIGS / "smoke.yaml"), *overrides, "--quiet"],
            env=self.ray.head.client_environment(),
            timeout=600,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-5000:]
        run = Lottery(load(CONFIGS / "smoke.yaml", overrides), output, list(nodes))
        self.runs[placement] = run
        return run

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
    made = Cluster(tmp_path_factory.mktemp("multinode"), digits_dir)
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
