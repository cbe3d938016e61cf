"""`scale-lth status` against the files it reads: a made-up experiment in every state, and a
real one asked mid-way through a run (paused there) and again once it has ended."""

import json
import threading
import time

import pytest

from scale_lth.cli import main
from scale_lth.lottery.job import Job
from scale_lth.results import Layout, Observer, RunKey
from scale_lth.status import experiment_status
from scale_lth.storage import atomic_write_json
from tests.conftest import CONFIGS
from tests.runs import runner

SMOKE = str(CONFIGS / "smoke.yaml")


def test_each_run_s_state_and_the_compute_come_from_its_files(smoke_config):
    config = smoke_config()  # 2 levels, 3 baselines: 3 tickets and 6 baselines
    layout = Layout(config.experiment_dir)
    now = time.time()
    done = {"seconds": 36.0, "world_size": 2, "total_steps": 40, "start_step": 0}
    layout.write_metrics(RunKey(0, 0), done)
    # running: heard from 5 s ago, 30 steps in the 15 s since this attempt began at step 0
    beat = {"step": 30, "total": 30 + 10, "time": now - 5, "attempt_step": 0}
    atomic_write_json(layout.heartbeat_path(RunKey(0, 1)), {**beat, "attempt_time": now - 20})
    # failed: its heartbeat stopped long ago and it left its error
    stale = {"step": 12, "total": 30, "time": now - 1000, "attempt_step": 10}
    atomic_write_json(layout.heartbeat_path(RunKey(0, 1, "snip")), {**stale, "attempt_time": 0})
    atomic_write_json(layout.failure_path(RunKey(0, 1, "snip")), {"error": "ValueError: boom"})
    # interrupted: stale heartbeat, no error
    atomic_write_json(layout.heartbeat_path(RunKey(0, 2)), {**stale, "attempt_time": 0})

    status = experiment_status(config, layout.root, now=now)
    assert status.counts() == {
        "finished": 1, "running": 1, "failed": 1, "interrupted": 1, "waiting": 5,
    }  # fmt: skip
    states = {run.key: run for run in status.runs}
    running = states[str(RunKey(0, 1))]
    assert (running.step, running.total, running.steps_per_second) == (30, 40, 2.0)
    assert states[str(RunKey(0, 1, "snip"))].error == "ValueError: boom"
    assert status.unit == "CPU worker-hours"
    assert status.spent_hours == pytest.approx((36 * 2 + 15 * 2) / 3600)
    per_step = 36 * 2 / 40  # worker-seconds per step of the finished run
    left_steps = (40 - 30) + (30 - 12) + (30 - 12) + 5 * 40  # started runs: their own rest
    assert status.hours_left == pytest.approx(left_steps * per_step / 3600)


class PauseAt(Observer):
    """Holds the training of ``key`` at its evaluation of ``step`` until released."""

    def __init__(self, key: RunKey, step: int) -> None:
        self.key, self.step = key, step
        self.reached, self.release = threading.Event(), threading.Event()

    def evaluated(self, key: RunKey, row: dict) -> None:
        if key == self.key and row["iteration"] == self.step:
            self.reached.set()
            self.release.wait(timeout=120)


def test_status_of_an_experiment_mid_run_and_after_it(smoke_config, digits_dir, tmp_path, capsys):
    overrides = [
        f"data.path={digits_dir}",
        f"output_root={tmp_path / 'results'}",
        "pruning.levels=1",
        "baselines.branches=[reinit]",
        "training.duration=60it",
    ]
    config = smoke_config(*overrides[2:])
    pause = PauseAt(RunKey(0, 1), 40)
    experiment = runner(config, observers=[pause])
    training = threading.Thread(target=experiment.execute, args=(Job.lottery(config),))
    training.start()
    try:
        assert pause.reached.wait(timeout=120)
        capsys.readouterr()  # what training printed so far
        assert main(["status", SMOKE, *overrides, "--json"]) == 0
        mid = json.loads(capsys.readouterr().out)
    finally:
        pause.release.set()
        training.join()
    assert mid["counts"] == {
        "finished": 1, "running": 1, "failed": 0, "interrupted": 0, "waiting": 1,
    }  # fmt: skip
    (running,) = [run for run in mid["runs"] if run["state"] == "running"]
    assert running["key"] == str(RunKey(0, 1)) and running["total"] == 60
    capsys.readouterr()
    assert main(["status", SMOKE, *overrides]) == 0
    after = capsys.readouterr().out
    assert ": 3 of 3 runs finished, 0 running, 0 failed, 0 interrupted, 0 waiting" in after
    assert "left about 0" in after
