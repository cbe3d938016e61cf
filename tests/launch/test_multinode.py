"""DDP across two nodes through Ray: a Ray cluster made with the project's own code and token
on two namespaced nodes (tests.services.nodes: a head on node a, a worker on node b, 2 CPUs
each), and `scale-lth lottery` run on node a with `scaling.address=<head>`.

With `scaling.placement=spread` Ray puts one rank on each node, and gloo's full mesh must
connect them whatever the hostname resolves to: the nodes have their own hostnames resolving
to their addresses, or (the case of issue 19) one hostname resolving to 127.0.0.1, where every
rank would advertise loopback unless told the interface of its node's Ray address. Another
Ray runs on the machine meanwhile (the suite's loopback head), as in the issue, where Ray
Train's placement-group cleaner then failed to tell which Ray instance was its own.

The module keeps one cluster at a time: the tests of each hostname kind share it, and each
lottery runs once (``Clusters`` keeps the results)."""

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
from tests.services.nodes import Node, Nodes, unavailable
from tests.services.ray_nodes import RayCluster

# one network of namespaced nodes per machine: its tests run in one process (tests/conftest.py)
pytestmark = [pytest.mark.integration, pytest.mark.ray_cluster, pytest.mark.xdist_group("nodes")]

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
class Clusters:
    """One namespaced Ray cluster at a time, of the hostname kind a test asks for, and the
    lotteries run on it."""

    folder: Path
    data: Path
    nodes: Nodes | None = None
    ray: RayCluster | None = None
    runs: dict[tuple[str, str], Lottery] = field(default_factory=dict)

    def on(self, hostnames: str) -> Nodes:
        """The nodes of a running cluster of this kind (the other kind's stopped first)."""
        if self.nodes is None or self.nodes.hostnames != hostnames:
            self.stop()
            self.nodes = Nodes(2, hostnames).__enter__()
            try:
                self.ray = RayCluster(list(self.nodes), CPUS_PER_NODE, self.folder).__enter__()
            except BaseException:
                self.stop()
                raise
        return self.nodes

    def lottery(self, hostnames: str, placement: str) -> Lottery:
        """configs/smoke.yaml, tiny, run on node a against the cluster (once per kind and
        placement); tracked in MLflow where spread, the packed runs being references."""
        if (hostnames, placement) in self.runs:
            return self.runs[hostnames, placement]
        nodes = self.on(hostnames)
        results = self.folder / f"{hostnames}-{placement}"
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
        self.runs[hostnames, placement] = run
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
def clusters(tmp_path_factory, digits_dir, ray_head):
    """``ray_head``: another Ray on this machine, on loopback, as in the issue."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    made = Clusters(tmp_path_factory.mktemp("multinode"), digits_dir)
    try:
        yield made
    finally:
        made.stop()


@pytest.mark.parametrize("hostnames", ["own", "shared"])
def test_spread_places_one_rank_on_each_node_and_trains(clusters, hostnames):
    run = clusters.lottery(hostnames, "spread")
    for key in KEYS:
        ranks = run.ranks(key)
        assert [rank["rank"] for rank in ranks] == [0, 1]
        assert {rank["address"] for rank in ranks} == {node.address for node in run.nodes}
        assert sorted(rank["host"] for rank in ranks) == sorted(n.hostname for n in run.nodes)
    assert sorted(run.layout.finished()) == KEYS
    # Ray Train's placement-group cleaner found its own cluster among the machine's Rays
    assert "Found multiple active Ray instances" not in run.output


@pytest.mark.parametrize("hostnames", ["own", "shared"])
def test_where_the_ranks_trained_is_an_mlflow_tag(clusters, hostnames):
    run = clusters.lottery(hostnames, "spread")
    client = MlflowClient(run.config.tracking.uri)
    experiment = client.get_experiment_by_name(run.config.name)
    trained = client.search_runs([experiment.experiment_id], "tags.run_kind = 'level'")
    assert len(trained) == len(KEYS)
    for each in trained:
        ranks = run.ranks(RunKey(0, int(each.data.tags["level"])))
        expected = "; ".join(f"{rank['host']} {rank['address']}: {rank['rank']}" for rank in ranks)
        assert each.data.tags["ranks"] == expected


def test_two_nodes_train_the_same_ticket_as_one(clusters):
    """Spread over two nodes, the lottery's masks and weights equal, bit for bit, those of
    the same lottery with both ranks on one node. Each rank computes its share alike wherever
    it runs (the same data shard, one torch thread each on the same kind of CPU), and gloo's
    reduction order follows the ranks, not where they run: with two ranks each sum is a + b,
    exact whichever rank adds (floating-point addition is commutative; only its association
    depends on order, and that is fixed by the algorithm and the world size). So nothing is
    allowed to differ."""
    spread = clusters.lottery("shared", "spread")
    packed = clusters.lottery("shared", "pack")
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
