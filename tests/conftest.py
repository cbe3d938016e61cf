"""Shared fixtures: the digits data written once per test session, a small experiment config,
and real services started once per test session on loopback and stopped by PID (a single-node
SLURM cluster with accounting, an MLflow server, a Ray head). The service marks come from the
fixtures a test uses; a test without the integration mark that starts a process fails; GPU
tests are set aside, with a line saying so, where there is no CUDA device."""

import os
from pathlib import Path

import pytest
import submitit
import torch

from scale_lth.config import load
from scale_lth.orchestration.ray_cluster import start_head
from tests.processes import processes_refused, refusal
from tests.services.mlflow_server import MlflowServer
from tests.services.slurm import SlurmCluster

pytest_plugins = ["pytester"]  # tests/test_processes.py runs the guard below on its own tests

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    from scale_lth.data import sources, write_splits  # FFCV: imported only where data is written

    folder = tmp_path_factory.mktemp("data") / "digits"
    write_splits(sources.digits(), folder, source="digits")
    return folder


@pytest.fixture
def smoke_config(tmp_path, digits_dir):
    """configs/smoke.yaml with its data and results in temporary folders; more overrides
    may be passed."""

    def make(*overrides: str):
        return load(
            CONFIGS / "smoke.yaml",
            [f"data.path={digits_dir}", f"output_root={tmp_path / 'results'}", *overrides],
        )

    return make


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


SERVICE_MARKS = {
    "slurm_cluster": "slurm",
    "ray_head": "ray_cluster",
    "mlflow_server": "mlflow_server",
}


def pytest_itemcollected(item):
    """A test is marked for each service fixture it uses, itself or through another fixture, and
    as integration. (A test that starts an instance of a service of its own, from
    tests/services, carries that service's mark by hand.)"""
    uses = getattr(item, "fixturenames", ())
    for fixture, mark in SERVICE_MARKS.items():
        if fixture in uses:
            item.add_marker(mark)
            item.add_marker("integration")


def unless_integration(item):
    """The body of a hook wrapper: the phase runs with processes refused unless ``item`` is
    marked integration; a refusal the code under test caught fails the test all the same."""
    if item.get_closest_marker("integration"):
        return (yield)
    with processes_refused() as refused:
        result = yield
    if refused:
        pytest.fail(refusal(refused[0]))
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from unless_integration(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from unless_integration(item))


_GPU_DESELECTED = pytest.StashKey[int]()


def pytest_collection_modifyitems(config, items):
    """Without a CUDA device the ``gpu`` tests are deselected (not skipped) and the summary
    says how many and how to run them."""
    if torch.cuda.is_available():
        return
    gpu = [item for item in items if "gpu" in item.keywords]
    if gpu:
        config.hook.pytest_deselected(items=gpu)
        items[:] = [item for item in items if "gpu" not in item.keywords]
        config.stash[_GPU_DESELECTED] = len(gpu)


def pytest_terminal_summary(terminalreporter, config):
    count = config.stash.get(_GPU_DESELECTED, 0)
    if count:
        terminalreporter.write_line(
            f"{count} GPU tests deselected: no CUDA device here "
            "(on a GPU machine they run with the rest; `make gpu-check` runs them alone)"
        )
