"""A shared experiment folder with more than one writer: two `scale-lth lottery` invocations
started together on one experiment, and `scale-lth sync` delivering over and over while they
train, end with every run trained once (by whichever invocation held its lock) and bitwise
equal to a lone invocation's, neither's Ray Train taking the other's local Ray for its own, and
MLflow holding each run once with every step once. Two worker
groups, one meeting an error that would recur, end in one line without retries, never a
hang."""

import re
import shutil
import subprocess
import sys
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
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
        # each one's Ray Train found its own local Ray among the two on the machine
        assert "Found multiple active Ray instances" not in stdout + stderr
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
    as soon as the queue stops, and the command ends with the error in one line and exit code 1,
    after one restart of the failing group that finds the error recorded (``max_failures=2``
    would make three)."""
    overrides = [
        *OVERRIDES, "scaling.num_workers=1", "scaling.concurrent_runs=2", "scaling.max_failures=2"
    ]  # fmt: skip
    layout = Layout(tmp_path / load(SMOKE, overrides).experiment_dir)
    rewind = layout.rewind_path(0)
    process = start(tmp_path, "lottery", SMOKE, *overrides, "--quiet")
    try:
        deadline = time.monotonic() + 300
        while not rewind.is_file():
            if process.poll() is not None or time.monotonic() > deadline:  # a hang guard
                raise TimeoutError("no rewind weights while the lottery ran")
            time.sleep(0.02)
        rewind.write_bytes(b"not a checkpoint")
        stdout, stderr = process.communicate(timeout=600)  # a hang guard, not a speed check
    finally:
        stop_session(process)
    assert process.returncode == 1, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"scale-lth: error: a worker \(rank 0\) failed: DamagedFile: .+", last)
    assert last.endswith(
        f"{rewind} is damaged (truncated or corrupt): delete it and run again (the run it "
        "belongs to is redone from its last good state)"
    )
    assert "Starting 2 x 1 Ray Train workers" in stdout
    assert (stdout + stderr).count("Started training worker group") == 2 + 1  # one restart
    assert layout.is_done(RunKey(0, 0)) and not layout.is_done(RunKey(0, 1))


REPORT_WRITER = """
import os, sys, time
from pathlib import Path
from scale_lth.config import load
from scale_lth.driver import report
from scale_lth.results import Layout
from scale_lth.tracking.experiment import prepare_tracking
Path(f"{sys.argv[2]}.{os.getpid()}").touch()  # ready
while not Path(sys.argv[2]).exists():  # both go at once
    time.sleep(0.005)
config = prepare_tracking(load(sys.argv[1], sys.argv[3:]))
report(config, Layout(config.experiment_dir).finished())
"""


def test_two_report_writers_ending_together_make_one_summary_and_one_curve_run_each(
    experiment, mlflow_server, tmp_path
):
    """The end of two invocations of one experiment (or two tasks of a sweep): each makes the
    MLflow experiment and logs the report to the same tracking server at the same moment;
    both succeed, and MLflow holds one summary run and one curve run per method."""
    _, reference, _, _ = experiment
    experiment_name = f"reports-{tmp_path.name}"
    overrides = [
        *OVERRIDES,
        f"output_root={tmp_path / 'results'}",
        f"tracking.uri={mlflow_server.uri}",
        f"tracking.experiment={experiment_name}",
    ]
    config = load(SMOKE, overrides)
    shutil.copytree(
        reference.root, config.experiment_dir, ignore=shutil.ignore_patterns("tracking")
    )
    go = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", REPORT_WRITER, str(SMOKE), str(go), *overrides],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    deadline = time.monotonic() + 300
    while len(list(tmp_path.glob("go.*"))) < 2:  # both have imported torch and MLflow
        ended = [w for w in writers if w.poll() is not None]
        assert not ended, ended[0].communicate()[1][-3000:]  # a writer died before going
        if time.monotonic() > deadline:
            raise TimeoutError("the report writers never got ready")  # a hang guard
        time.sleep(0.05)
    go.touch()
    for writer in writers:
        _, stderr = writer.communicate(timeout=300)  # a hang guard
        assert writer.returncode == 0, stderr[-3000:]
    client = MlflowClient(mlflow_server.uri)
    found = client.get_experiment_by_name(experiment_name)
    kinds = [run.data.tags.get("run_kind") for run in client.search_runs([found.experiment_id])]
    assert sorted(kind for kind in kinds if kind in ("summary", "curve")) == [
        "curve",
        "curve",
        "curve",
        "curve",
        "summary",
    ]
