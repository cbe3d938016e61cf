"""A shared experiment folder with more than one writer: two `scale-lth lottery` invocations
started together on one experiment, and `scale-lth sync` delivering over and over while they
train, end with every run trained once (by whichever invocation held its lock) and bitwise
equal to a lone invocation's, and MLflow holding each run once with every step once. Two worker
groups, one meeting an error that would recur, end in one line, never a hang."""

import re
import time

import pytest
from mlflow import MlflowClient

from scale_lth.config import load
from scale_lth.results import Layout, RunKey
from scale_lth.tracking.tracker import sync
from tests.lottery.conftest import OVERRIDES, SMOKE
from tests.lottery.test_faults import same_results
from tests.processes import start, stop_session
from tests.tracking.test_mlflow_outage import each_run_once

pytestmark = [pytest.mark.integration]

FEWER = [*OVERRIDES, "pruning.levels=1", "baselines.branches=[reinit]"]


def test_two_invocations_and_a_looping_sync_train_and_track_each_run_once(experiment, tmp_path):
    _, reference, _, _ = experiment
    config = load(SMOKE, FEWER)
    layout = Layout(tmp_path / config.experiment_dir)
    # `scale-lth sync` as the invocations see the experiment: their folder, their ./mlflow.db
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    where = [f"output_root={tmp_path / 'results'}", f"tracking.uri={store}"]
    synced = load(SMOKE, [*FEWER, *where, f"tracking.experiment={config.name}"])
    processes = [start(tmp_path, "lottery", SMOKE, *FEWER, "--quiet") for _ in range(2)]
    try:
        while any(process.poll() is None for process in processes):
            if layout.tracking_dir.is_dir():
                sync(synced)
            time.sleep(0.5)
        outputs = [process.communicate(timeout=600) for process in processes]  # a hang guard
    finally:
        for process in processes:
            stop_session(process)
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
    printed = "".join(stdout for stdout, _ in outputs)
    runs = [RunKey(0, 0), RunKey(0, 1), RunKey(0, 1, "reinit")]
    for key in runs:  # each trained once, by one of the two
        assert len(re.findall(rf"\[{re.escape(str(key))}\] training at", printed)) == 1, key
    same_results(layout, reference, expected_runs=len(runs))
    sync(synced)
    each_run_once(MlflowClient(store), config.name, layout, config.hash)


def test_two_groups_end_in_one_line_when_one_meets_an_error_that_would_recur(tmp_path):
    """Level 0's rewind weights are damaged while it trains; the group that takes level 1's
    ticket cannot load them and records the error; the other group, waiting for level 1, leaves
    as soon as the queue stops, and the command ends with the error in one line."""
    overrides = [*OVERRIDES, "scaling.num_workers=1", "scaling.concurrent_runs=2"]
    layout = Layout(tmp_path / load(SMOKE, overrides).experiment_dir)
    process = start(tmp_path, "lottery", SMOKE, *overrides, "--quiet")
    try:
        deadline = time.monotonic() + 300
        while not layout.rewind_path(0).is_file():
            if process.poll() is not None or time.monotonic() > deadline:  # a hang guard
                raise TimeoutError("no rewind weights while the lottery ran")
            time.sleep(0.02)
        layout.rewind_path(0).write_bytes(b"not a checkpoint")
        stdout, stderr = process.communicate(timeout=600)  # a hang guard, not a speed check
    finally:
        stop_session(process)
    assert process.returncode == 1, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"scale-lth: error: a worker \(rank 0\) failed: DamagedFile: .+", last)
    assert "Starting 2 x 1 Ray Train workers" in stdout
