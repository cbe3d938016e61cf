"""The instability analysis as a user runs it, on the real digits data, a local Ray and MLflow
(read back here): `scale-lth stability` on the demo config, the dense network from two steps
and a level's subnetwork from the rewind point `rewinding.step: auto` chose."""

import json

import pytest
import torch
from mlflow import MlflowClient

from scale_lth.config import load
from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey, instability_branch
from tests.conftest import CONFIGS
from tests.processes import scale_lth

pytestmark = [pytest.mark.integration]

DIGITS = str(CONFIGS / "digits_lenet.yaml")


def parents(cwd, name: str) -> dict[int, object]:
    """The trunk (parent) run of each replicate in MLflow."""
    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], "tags.run_kind = 'trunk'")
    return {int(run.data.tags["replicate"]): run for run in runs}


def barrier(errors: list[float]) -> float:
    return max(errors) - (errors[0] + errors[-1]) / 2


# Kept short (one level, 300 steps a run); with `rewinding.step: auto` the level's ticket
# rewinds to the candidate the dense network's instability chose.
OVERRIDES = [
    "replicates=2",
    "pruning.levels=1",
    "training.duration=300it",
    "rewinding.step=auto",
    "rewinding.candidates=[0it,100it]",
]


def test_stability_measures_each_start_and_auto_rewinds_where_the_network_is_stable(tmp_path):
    arguments = ["instability", DIGITS, *OVERRIDES, "--steps", "0it,100it", "--levels", "1"]
    result = scale_lth(tmp_path, *arguments, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    config = load(DIGITS, OVERRIDES)
    layout = Layout(tmp_path / config.experiment_dir)
    lines = result.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("instability")) :]
    assert any("0it (0 it)" in line for line in table)
    assert any("100it (100 it)" in line for line in table)
    plot = layout.report_dir / "instability.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    record = json.loads((layout.report_dir / "instability.json").read_text())["instability"]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = parents(tmp_path, config.name)
    for replicate in (0, 1):
        dense = {m["step"]: m for m in record if m["replicate"] == replicate and m["level"] == 0}
        assert sorted(dense) == [0, 100]
        for step, measured in dense.items():
            for split, errors in measured["errors"].items():
                assert len(errors) == config.instability.points
                assert measured["instability"][split] == pytest.approx(barrier(errors))
            a, b = (RunKey(replicate, 0, instability_branch(part, f"{step}it")) for part in "ab")
            assert layout.read_metrics(a)["start_step"] == step
            ends = [torch.load(layout.final_path(copy)) for copy in (a, b)]
            names = [n for n, t in ends[0].items() if t.dim() > 1]
            apart = torch.cat([(ends[0][n] - ends[1][n]).flatten().double() for n in names])
            assert measured["distance"] == pytest.approx(float(apart.norm()))
        run = runs[replicate].info.run_id
        logged = {m.step: m.value for m in client.get_metric_history(run, "instability_test")}
        assert logged == pytest.approx({k: m["instability"]["test"] for k, m in dense.items()})

        # auto: the earliest candidate below the threshold on val, else the latest
        below = [
            k for k in (0, 100) if dense[k]["instability"]["val"] < config.instability.threshold
        ]
        chosen = below[0] if below else 100
        assert f"rewinding.step auto, replicate {replicate}: step {chosen} " in result.stdout
        assert layout.read_metrics(RunKey(replicate, 1))["start_step"] == chosen
        assert runs[replicate].data.metrics["rewind_step_chosen"] == chosen
        (level,) = [m for m in record if m["replicate"] == replicate and m["level"] == 1]
        assert level["step"] == chosen  # the level's copies start from its rewind point
        history = client.get_metric_history(run, "level_instability_test")
        assert [(m.step, m.value) for m in history] == [
            (1, pytest.approx(level["instability"]["test"]))
        ]
        ticket = Mask.load(layout.mask_path(RunKey(replicate, 1)))
        density = client.get_metric_history(run, "layer_density/output.weight")
        assert [(m.step, m.value) for m in density] == [
            (1, pytest.approx(ticket.layer_densities()["output.weight"]))
        ]
    assert "mask overlap" in result.stdout  # the replicates' level-1 masks
    assert any(line.split()[:2] == ["1", "rewind"] for line in table)
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id, "report")}
    assert {
        "report/instability.png",
        "report/instability.json",
        "report/layer_density.png",
    } <= artifacts
