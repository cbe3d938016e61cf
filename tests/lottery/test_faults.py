"""Faults with real kills, on a real local Ray: a training worker SIGKILLed mid-level is
restarted and the level resumes from its checkpoint; the driver SIGKILLed at five points and
re-run each time finishes with the uninterrupted lottery's masks, weights and accuracies,
never redoing a finished run and never leaving a damaged file under a final name. After each,
the MLflow store holds every run once, finished, with every metric step once."""

import signal
import time
from pathlib import Path

import psutil
import pytest
import torch
from mlflow import MlflowClient

from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey
from scale_lth.storage import load_json, load_torch
from tests.lottery.conftest import OVERRIDES, SMOKE
from tests.processes import scale_lth, session_members, start, stop_session
from tests.tracking.test_mlflow_outage import each_run_once

pytestmark = [pytest.mark.integration]


def wait_for(condition, process, what: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            raise AssertionError(
                f"the lottery ended before {what}: {process.stderr.read()[-2000:]}"
            )
        if time.monotonic() > deadline:  # a hang guard, not a speed check
            raise TimeoutError(f"no {what} within {seconds} s")
        time.sleep(0.01)


def same_results(layout: Layout, reference: Layout, expected_runs: int) -> None:
    """Its finished runs (``expected_runs`` of them) have the reference's masks, final weights
    and accuracies."""
    assert len(layout.finished()) == expected_runs
    assert set(layout.finished()) <= set(reference.finished())
    for key in layout.finished():
        if key.level > 0:
            assert Mask.load(layout.mask_path(key)) == Mask.load(reference.mask_path(key)), key
        final, expected = load_torch(layout.final_path(key)), load_torch(reference.final_path(key))
        assert all(torch.equal(final[name], expected[name]) for name in expected), key
        ours, theirs = layout.read_metrics(key), reference.read_metrics(key)
        assert ours["final_accuracy"] == theirs["final_accuracy"], key
        assert ours["history"] == theirs["history"], key


def every_visible_file_loads(root: Path) -> None:
    """No half-written file under a final name: whatever a kill interrupted is a hidden
    temporary file, and every other file loads."""
    for path in root.rglob("*"):
        if not path.is_file() or path.name.startswith(".") or "ray" in path.parts:
            continue
        if path.suffix == ".pt":
            load_torch(path)
        elif path.suffix == ".json":
            load_json(path)


def is_worker(process: psutil.Process) -> bool:
    try:
        return "RayTrainWorker" in " ".join(process.cmdline())
    except psutil.Error:  # gone, or a zombie already
        return False


def test_a_worker_killed_mid_level_is_restarted_and_the_level_resumes(experiment, tmp_path):
    _, reference, config, _ = experiment
    layout = Layout(tmp_path / reference.root.relative_to(reference.root.parents[1]))
    one_level = [*OVERRIDES, "pruning.levels=1"]  # the reference's folder, its first two levels
    process = start(tmp_path, "lottery", SMOKE, *one_level, "scaling.max_failures=2", "--quiet")
    try:
        checkpoint = layout.run_dir(RunKey(0, 1)) / "resume.json"
        wait_for(checkpoint.is_file, process, "a checkpoint of level 1")
        workers = [member for member in session_members(process.pid) if is_worker(member)]
        assert len(workers) == 2
        workers[-1].send_signal(signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=900)  # a hang guard
    finally:
        stop_session(process)
    assert process.returncode == 0, stderr[-3000:]
    assert (stdout + stderr).count("Started training worker group") == 2  # one restart
    assert layout.read_metrics(RunKey(0, 1))["resumed_from"] >= 150  # not from the start
    same_results(layout, reference, expected_runs=1 + 4)
    each_run_once(MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}"), "smoke", layout, config.hash)


KILL_POINTS = {
    "level 0 before the rewind checkpoint": lambda layout: layout.init_path(0).is_file(),
    "mid-level (level 1's ticket)": lambda layout: (
        layout.run_dir(RunKey(0, 1)) / "resume.json"
    ).is_file(),
    "during a baseline (level 1's reinit)": lambda layout: (
        layout.run_dir(RunKey(0, 1, "reinit")) / "resume.json"
    ).is_file(),
    "between levels (level 1 done, level 2 not started)": lambda layout: layout.is_done(
        RunKey(0, 1, "reinit")
    ),
    "during the report": lambda layout: (layout.root / "report").is_dir(),
}


def test_the_driver_killed_at_five_points_and_rerun_finishes_as_if_uninterrupted(
    experiment, tmp_path
):
    _, reference, config, _ = experiment
    layout = Layout(tmp_path / reference.root.relative_to(reference.root.parents[1]))
    finished: dict[RunKey, int] = {}  # metrics.json times of runs finished before each kill
    reinit_only = [*OVERRIDES, "baselines.branches=[reinit]"]  # the reference's folder
    for point, reached in KILL_POINTS.items():
        process = start(tmp_path, "lottery", SMOKE, *reinit_only, "--quiet")
        try:
            wait_for(lambda: reached(layout), process, point)  # noqa: B023
        finally:
            stop_session(process)  # SIGKILL to the driver, its Ray and the workers
        if point.startswith("level 0"):
            assert not layout.rewind_path(0).exists() and not layout.is_done(RunKey(0, 0))
        every_visible_file_loads(layout.root)
        for key, written in finished.items():
            assert layout.metrics_path(key).stat().st_mtime_ns == written, (point, key)
        finished = {key: layout.metrics_path(key).stat().st_mtime_ns for key in layout.finished()}
    result = scale_lth(tmp_path, "lottery", SMOKE, *reinit_only, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    for key, written in finished.items():  # not one finished run redone
        assert layout.metrics_path(key).stat().st_mtime_ns == written, key
    every_visible_file_loads(layout.root)
    same_results(layout, reference, expected_runs=1 + 2 * 2)
    assert layout.read_metrics(RunKey(0, 1))["resumed_from"] >= 150  # its checkpoint, not step k
    assert (layout.root / "report" / "accuracy.png").stat().st_size > 10_000
    store = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    each_run_once(store, "smoke", layout, config.hash)  # after five kills and resumes
