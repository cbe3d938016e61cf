"""A tracking server that dies in the middle of a lottery: training goes on to the end, what
MLflow missed waits on disk, and `scale-lth sync` sends it once the server is back; the store
then holds each run once, finished, with no metric step logged twice."""

import time

import pytest
from mlflow import MlflowClient

from scale_lth.config import load
from scale_lth.results import Layout, RunKey
from scale_lth.tracking.outbox import outboxes
from tests.lottery.conftest import OVERRIDES, SMOKE
from tests.processes import scale_lth, start, stop_session
from tests.services.mlflow_server import MlflowServer

pytestmark = [pytest.mark.integration, pytest.mark.mlflow_server]  # its own server


def each_run_once(client: MlflowClient, name: str, layout: Layout, config_hash: str) -> None:
    """One parent and one child per finished run, all FINISHED, every evaluation step once
    and as on disk, each child ending when its training did (however late its events reached
    MLflow)."""
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], f"tags.experiment_hash = '{config_hash}'")
    runs = [run for run in runs if run.data.tags["run_kind"] in ("trunk", "level")]
    finished = layout.finished()
    assert len(runs) == 1 + len(finished)
    assert all(run.info.status == "FINISHED" for run in runs)
    for run in runs:
        tags = run.data.tags
        if tags["run_kind"] != "level":
            continue
        key = RunKey(int(tags["replicate"]), int(tags["level"]), tags["branch"])
        recorded = layout.read_metrics(key)
        # a resumed run started before its last segment did (``trained_from``)
        assert run.info.start_time <= int(recorded["trained_from"] * 1000), key
        assert run.info.end_time == int(recorded["trained_until"] * 1000), key
        steps = [metric.step for metric in client.get_metric_history(run.info.run_id, "lr")]
        assert len(steps) == len(set(steps)), key  # no step twice
        assert sorted(steps) == [row["iteration"] for row in layout.read_metrics(key)["history"]]


def test_training_outlives_the_tracking_server_and_sync_sends_what_it_missed(tmp_path):
    server = MlflowServer(tmp_path / "server").start()
    overrides = [
        *OVERRIDES, "pruning.levels=1", "baselines.branches=[reinit]",
        f"tracking.uri={server.uri}", "tracking.experiment=outage",
    ]  # fmt: skip
    config = load(SMOKE, overrides)
    layout = Layout(tmp_path / config.experiment_dir)
    try:
        process = start(tmp_path, "lottery", SMOKE, *overrides, "--quiet")
        try:
            deadline = time.monotonic() + 300
            while not (layout.run_dir(RunKey(0, 1)) / "resume.json").is_file():
                if process.poll() is not None or time.monotonic() > deadline:  # a hang guard
                    ended = process.stderr.read()[-3000:] if process.poll() is not None else ""
                    raise TimeoutError(f"level 1 never checkpointed {ended}")
                time.sleep(0.02)
            server.stop()
            stdout, stderr = process.communicate(timeout=900)  # a hang guard
        finally:
            stop_session(process)
        assert process.returncode == 0, stderr[-3000:]
        assert "tracking events" in stdout and "scale-lth sync CONFIG" in stdout
        assert len(layout.finished()) == 1 + 2  # every run trained
        assert any(box.pending() for box in outboxes(layout.tracking_dir))

        server.start()  # the same port and store
        result = scale_lth(tmp_path, "sync", SMOKE, *overrides)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "has every tracking event" in result.stdout
        assert list(outboxes(layout.tracking_dir)) == []
        each_run_once(MlflowClient(server.uri), "outage", layout, config.hash)
    finally:
        server.stop()
