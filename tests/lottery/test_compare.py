"""On digits, one experiment per rewinding mode (weights, lr, finetune), each with every
baseline of the registry, trained by the lottery's runner in this process (its run on Ray is
tested end to end elsewhere); then `scale-lth compare` overlays them in one table and one plot,
names each by what differs in its config, and logs both to MLflow (a local store)."""

import json

import pytest
from mlflow import MlflowClient

from scale_lth import methods
from scale_lth.config import load
from scale_lth.driver import report
from scale_lth.lottery.job import Job
from scale_lth.results import Layout, RunKey
from scale_lth.tracking.experiment import prepare_tracking
from scale_lth.tracking.ui import runs_page
from tests.lottery.conftest import SMOKE
from tests.processes import scale_lth
from tests.runs import runner

pytestmark = [pytest.mark.integration]

MODES = ["weights", "lr", "finetune"]
SHORT = [
    "training.duration=60it",
    "rewinding.step=20it",
    "pruning.levels=1",
    f"baselines.branches=[{', '.join(methods.baselines())}]",
]


@pytest.fixture(scope="module")
def three_modes(tmp_path_factory, digits_dir):
    cwd = tmp_path_factory.mktemp("modes")
    items = []
    for mode in MODES:
        overrides = [*SHORT, f"rewinding.mode={mode}"]
        where = [  # as compare sees it, from cwd
            f"data.path={digits_dir}",
            f"output_root={cwd / 'results'}",
            f"tracking.uri=sqlite:///{cwd / 'mlflow.db'}",
        ]
        config = prepare_tracking(load(SMOKE, [*overrides, *where]))
        runner(config).execute(Job.lottery(config))
        report(config, Layout(config.experiment_dir).finished())  # its curve runs in MLflow
        items += [SMOKE, *overrides]
    return cwd, items


def test_every_mode_trains_every_method_from_its_start(three_modes):
    cwd, _ = three_modes
    for mode in MODES:
        layout = Layout(cwd / load(SMOKE, [*SHORT, f"rewinding.mode={mode}"]).experiment_dir)
        expected = {RunKey(0, 0)} | {RunKey(0, 1, b) for b in ["main", *methods.baselines()]}
        assert set(layout.finished()) == expected
        ticket = layout.read_metrics(RunKey(0, 1))
        assert ticket["start_step"] == 20 and ticket["total_steps"] == 60


def test_compare_overlays_the_modes_in_one_table_and_plot_and_logs_them(three_modes):
    cwd, items = three_modes
    result = scale_lth(cwd, "compare", *items, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout)
    labels = {f"rewinding.mode={mode}" for mode in MODES}  # the one setting that differs
    assert {row["experiment"] for row in rows} == labels
    assert len(rows) == len(MODES) * (1 + 1 + len(methods.baselines()))
    for row in rows:  # each cell is the run's own final accuracy (one replicate)
        mode = row["experiment"].split("=")[1]
        layout = Layout(cwd / load(SMOKE, [*SHORT, f"rewinding.mode={mode}"]).experiment_dir)
        metrics = layout.read_metrics(RunKey(0, row["level"], row["branch"]))
        assert row["accuracy_mean"] == metrics["final_accuracy"]
        assert row["weights_remaining"] == metrics["density"]
    plot = next(line for line in result.stderr.splitlines() if line.startswith("Comparison:"))
    paths = [part.strip() for part in plot.removeprefix("Comparison:").split(",")]
    assert open(paths[1], "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    text = scale_lth(cwd, "compare", *items)
    assert text.returncode == 0
    for label in labels:
        assert label in text.stdout
    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("smoke")
    runs = client.search_runs([experiment.experiment_id], "tags.run_kind = 'comparison'")
    assert len(runs) == 1  # the second compare found the first's run
    logged = {entry.path for entry in client.list_artifacts(runs[0].info.run_id, "compare")}
    assert logged == {"compare/compare.json", "compare/accuracy.png"}
    assert set(runs[0].data.params.values()) == labels
    # the compared experiments' curve runs, tagged, and the address that charts them together
    comparison = runs[0].data.tags["comparison_id"]
    search = f"tags.`compared_in.{comparison}` = 'yes'"
    tagged = client.search_runs([experiment.experiment_id], search)
    hashes = {load(SMOKE, [*SHORT, f"rewinding.mode={mode}"]).hash for mode in MODES}
    methods_of = {"main", *methods.baselines()}
    assert {(r.data.tags["experiment_hash"], r.data.tags["method"]) for r in tagged} == {
        (experiment_hash, method) for experiment_hash in hashes for method in methods_of
    }
    page = runs_page("http://127.0.0.1:5000", [experiment.experiment_id], True, search)
    assert f"the curve runs together: {page}" in text.stderr
