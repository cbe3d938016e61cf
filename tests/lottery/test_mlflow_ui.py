"""The MLflow UI a researcher opens on a finished digits experiment, rendered by a real
headless Chromium (Debian's, installed by `make install`) and read as its DOM: it opens on the
training runs, and its chart view holds the curve metrics by level (MLflow groups charts by
the part of a metric's name before "/": a section per measure, a chart per method)."""

import re
import subprocess

import pytest
from mlflow import MlflowClient

from scale_lth.tracking.ui import experiment_page
from tests.services.mlflow_server import MlflowServer

pytestmark = [pytest.mark.integration, pytest.mark.mlflow_server]  # its own server

CHROMIUM = "/usr/bin/chromium"


def text_of(dom: str) -> str:
    """The page's text: tags and style sheets out, spaces folded."""
    dom = re.sub(r"<style[^<]*</style>", " ", dom)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def rendered(url: str) -> str:
    """The page's DOM once its scripts have run (a virtual time budget lets the app fetch)."""
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=30000",
            "--window-size=1600,1200",
            "--dump-dom",
            url,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def ui(experiment):
    """The README's `mlflow ui` on the experiment's own store (<cwd>/mlflow.db), on loopback."""
    server = MlflowServer(experiment[0], verb="ui").start()
    try:
        yield server
    finally:
        server.stop()


def experiment_id(experiment) -> str:
    cwd, _, config, _ = experiment
    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    found = client.get_experiment_by_name(config.name)
    assert found.tags["mlflow.experimentKind"] == "custom_model_development"
    return found.experiment_id


def test_the_page_the_lottery_prints_opens_on_the_training_runs(experiment, ui):
    _, _, config, result = experiment
    page = experiment_page("http://127.0.0.1:5000", experiment_id(experiment))
    assert f"(then open {page})" in result.stdout  # what the researcher is told to open
    dom = text_of(rendered(page.replace("http://127.0.0.1:5000", ui.uri)))
    assert "Runs - Experiment" in dom  # the page's title: the runs, not the GenAI overview
    assert f"{config.name}-{config.hash} replicate 0" in dom  # the parent run in the table
    assert "Token Usage" not in dom


def test_the_chart_view_draws_the_curve_by_level(experiment, ui):
    page = experiment_page(ui.uri, experiment_id(experiment), charts=True)
    dom = text_of(rendered(page))
    # a section of charts per measure, one chart per method (ticket and 3 baselines) in each
    for measure in ("final_accuracy", "early_stop_accuracy", "density", "accuracy_mean"):
        assert f"{measure} (4) Add chart" in dom
