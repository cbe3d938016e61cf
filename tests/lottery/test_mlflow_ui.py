"""The MLflow UI a researcher opens on a finished digits experiment, rendered by a real
headless Chromium (Debian's, installed by `make install`) and read as its DOM: it opens on the
training runs, and its chart view holds the curve metrics by level (MLflow groups charts by
the part of a metric's name before "/": a section per measure, a chart per method)."""

import re
import subprocess

import pytest
from mlflow import MlflowClient

from scale_lth.tracking.ui import CURVE_RUNS, runs_page
from tests.lottery.conftest import BRANCHES
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
            "--window-size=1600,3000",  # tall: charts below the fold are not drawn
            "--dump-dom",
            url,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def rendered_with(url: str, text: str, attempts: int = 3) -> str:
    """The page's text once it shows ``text``: on a busy machine the charts may still be
    loading when a rendering's time budget ends, so the page is rendered again, a few times."""
    for _ in range(attempts):
        page = text_of(rendered(url))
        if text in page:
            break
    return page


CHART = "test_accuracy_by_weights_remaining_bp"


@pytest.fixture(scope="module")
def ui(experiment):
    """The README's `mlflow ui` on the experiment's own store (<cwd>/mlflow.db), on loopback,
    warmed up: a new server answers its first requests of each kind slowly (it loads their
    handlers then), and the first renderings of a page end before its charts are drawn."""
    server = MlflowServer(experiment[0], verb="ui").start()
    try:
        rendered_with(runs_page(server.uri, [experiment_id(experiment)], True, CURVE_RUNS),
                      f"({CHART})", attempts=5)  # fmt: skip
        yield server
    finally:
        server.stop()


def config_name(experiment) -> str:
    return experiment[2].name


def experiment_id(experiment) -> str:
    cwd, _, config, _ = experiment
    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    found = client.get_experiment_by_name(config.name)
    assert found.tags["mlflow.experimentKind"] == "custom_model_development"
    return found.experiment_id


def test_the_page_the_lottery_prints_charts_every_method_against_the_weights_remaining(
    experiment, ui
):
    """The printed address opens the curve runs, in the chart view: one chart with a line per
    method, the weights remaining (basis points) on its x axis, the dense network at 10k."""
    _, _, config, result = experiment
    page = runs_page("http://127.0.0.1:5000", [experiment_id(experiment)], True, CURVE_RUNS)
    assert f"(then open {page})" in result.stdout  # what the researcher is told to open
    dom = rendered_with(page.replace("http://127.0.0.1:5000", ui.uri), f"({CHART})")
    assert "Runs - Experiment" in dom  # the page's title: the runs, not the GenAI overview
    assert "Token Usage" not in dom
    methods = ["main", *BRANCHES]
    assert f"{len(methods)} matching runs" in dom  # the curve runs alone
    drawn = re.search(rf"{CHART} (?P<ticks>[\w. ]*?) Step(?P<legend>( [^()]+ \({CHART}\))+)", dom)
    assert drawn, dom[:3000]
    # the x ticks (thousands of basis points, "7k") span the weights remaining of the runs:
    # smoke.yaml's levels keep 100%, 80% and 64% of the prunable weights (output layer 90%)
    x_ticks = [1000 * float(tick[:-1]) for tick in drawn["ticks"].split() if tick.endswith("k")]
    assert x_ticks and 6000 <= min(x_ticks) <= 8000 and 9000 <= max(x_ticks) <= 10_000, x_ticks
    for method in methods:  # a line per method in the one chart
        assert f" curve · {method} · {config.name} ({CHART})" in drawn["legend"]


def test_the_chart_view_of_every_run_draws_the_curve_by_level(experiment, ui):
    page = runs_page(ui.uri, [experiment_id(experiment)], charts=True)
    dom = text_of(rendered(page))
    assert f"replicate 0 · {config_name(experiment)} · " in dom  # the trunk run, named
    # a section of charts per measure, one chart per method (ticket and 3 baselines) in each
    for measure in ("final_accuracy", "early_stop_accuracy", "density", "accuracy_mean"):
        assert f"{measure} (4) Add chart" in dom
