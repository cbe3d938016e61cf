"""`ray job submit` against a real Ray head (started with `ray start`), the experiment logging
to a real MLflow server: the README's command, as users run it."""

import subprocess

import pytest
from mlflow import MlflowClient

from scale_lth.config import load
from scale_lth.orchestration.ray_cluster import ray_executable
from scale_lth.results import Layout
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration]


def test_ray_job_submit_runs_the_lottery_into_the_configured_storage_and_mlflow(
    ray_head, mlflow_server, tmp_path
):
    overrides = [
        f"output_root={tmp_path / 'results'}",
        f"data_root={tmp_path / 'data'}",
        f"tracking.uri={mlflow_server.uri}",
        "tracking.experiment=submitted",
        "pruning.levels=1",
    ]
    result = subprocess.run(
        [
            ray_executable(),
            "job",
            "submit",
            "--address",
            ray_head.dashboard,
            "--working-dir",
            str(ROOT),  # .gitignore keeps .venv, data and results out
            "--",
            "scale-lth",
            "lottery",
            "configs/smoke.yaml",
            *overrides,
            "--quiet",
        ],  # fmt: skip
        env=ray_head.client_environment(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "succeeded" in result.stdout
    config = load(ROOT / "configs" / "smoke.yaml", overrides)
    assert len(Layout(config.experiment_dir).finished()) == 1 + 4
    client = MlflowClient(mlflow_server.uri)
    experiment = client.get_experiment_by_name("submitted")
    runs = client.search_runs([experiment.experiment_id], f"tags.experiment_hash = '{config.hash}'")
    kinds = [run.data.tags["run_kind"] for run in runs]
    # the trunk's parent, a run per level and branch, a curve run per method
    assert sorted(kinds) == sorted(["trunk"] + ["level"] * (1 + 4) + ["curve"] * 4)
    assert all(run.info.status == "FINISHED" for run in runs)
