"""Real services for the launcher tests, started once per test session on loopback and
stopped by PID: a single-node SLURM cluster with accounting, an MLflow server, a Ray head."""

import os

import pytest
import submitit

from scale_lth.orchestration.ray_cluster import start_head
from tests.services.mlflow_server import MlflowServer
from tests.services.slurm import SlurmCluster


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as cluster:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLURM_CONF", str(cluster.conf))
            # submitit waits 15 s for a result file after a job ends without one
            patch.setattr(submitit.slurm.slurm.SlurmJob, "_results_timeout_s", 5)
            yield cluster


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


@pytest.fixture(scope="session")
def ray_head():
    head = start_head("127.0.0.1", num_cpus=len(os.sched_getaffinity(0)))
    try:
        yield head
    finally:
        head.stop()
