"""The lottery experiment on a real local Ray (2 DDP workers over gloo), end to end:
masks and counts, pruned weights, MLflow runs read back, report, re-runs, branches."""

import json
import math
import re
import shutil

import pytest
import torch
from mlflow import MlflowClient

from scale_lth.config import load
from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey
from tests.lottery.conftest import BRANCHES, OVERRIDES, SMOKE
from tests.processes import scale_lth
from tests.pruned import assert_pruned_weights_zero

pytestmark = [pytest.mark.integration]


def per_layer_rates(mask: Mask) -> dict[str, float]:
    """smoke.yaml: layer-wise 20%, the output layer 10%."""
    return {name: 0.1 if name == "output.weight" else 0.2 for name in mask}


def test_every_level_keeps_the_expected_count_per_layer(experiment):
    _, layout, config, _ = experiment
    first = Mask.load(layout.mask_path(RunKey(0, 1)))
    expected = {name: keep.numel() for name, keep in first.items()}
    rates = per_layer_rates(first)
    for level in range(1, config.pruning.levels + 1):
        expected = {n: k - math.ceil(rates[n] * k) for n, k in expected.items()}
        mask = Mask.load(layout.mask_path(RunKey(0, level)))
        assert mask.layer_kept() == expected
        for name, kept in mask.layer_kept().items():
            density = kept / mask[name].numel()
            assert abs(density - (1 - rates[name]) ** level) < 2 * level / mask[name].numel()


def test_baselines_keep_exactly_the_tickets_counts(experiment):
    _, layout, config, _ = experiment
    for level in range(1, config.pruning.levels + 1):
        ticket = Mask.load(layout.mask_path(RunKey(0, level)))
        random = Mask.load(layout.mask_path(RunKey(0, level, "random_prune")))
        snip = Mask.load(layout.mask_path(RunKey(0, level, "snip")))
        assert random.layer_kept() == ticket.layer_kept() and random != ticket
        assert snip.num_kept == ticket.num_kept
        assert layout.read_metrics(RunKey(0, level, "reinit"))["kept"] == ticket.num_kept


def test_pruned_weights_are_exactly_zero_after_ddp_training(experiment):
    _, layout, _, _ = experiment
    assert_pruned_weights_zero(layout)


def test_rewinding_and_starts_are_recorded(experiment):
    _, layout, config, _ = experiment
    rewind = torch.load(layout.rewind_path(0))
    assert rewind["step"] == 100  # OVERRIDES: rewinding.step 100it
    for level in (1, 2):
        assert layout.read_metrics(RunKey(0, level))["start_step"] == 100
        assert layout.read_metrics(RunKey(0, level, "random_prune"))["start_step"] == 100
        assert layout.read_metrics(RunKey(0, level, "reinit"))["start_step"] == 0
        assert layout.read_metrics(RunKey(0, level, "snip"))["start_step"] == 0


def test_mlflow_holds_parent_and_child_runs(experiment):
    cwd, layout, config, _ = experiment
    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    mlflow_experiment = client.get_experiment_by_name("smoke")
    runs = client.search_runs([mlflow_experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("run_kind") == "trunk"]
    children = [r for r in runs if r.data.tags.get("run_kind") == "level"]
    assert len(parents) == 1 and len(children) == 1 + 2 * 4
    parent = parents[0]
    assert parent.data.tags["experiment_hash"] == config.hash
    # a model-training experiment (the view a page opens on comes from its address: test_mlflow_ui)
    assert mlflow_experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    # the curve, per method with the level as the step, as the runs on disk hold it
    for branch in ("main", "snip"):
        curve = client.get_metric_history(parent.info.run_id, f"final_accuracy/{branch}")
        levels = (0, 1, 2) if branch == "main" else (1, 2)
        on_disk = {n: layout.read_metrics(RunKey(0, n, branch))["final_accuracy"] for n in levels}
        assert {m.step: m.value for m in curve} == pytest.approx(on_disk)
    (summary,) = [r for r in runs if r.data.tags.get("run_kind") == "summary"]
    assert summary.data.tags["summary_of"] == config.hash
    means = client.get_metric_history(summary.info.run_id, "accuracy_mean/reinit")
    expected = {n: layout.read_metrics(RunKey(0, n, "reinit"))["final_accuracy"] for n in (1, 2)}
    assert {m.step: m.value for m in means} == pytest.approx(expected)  # one replicate
    assert parent.data.params["training.lr"] == "0.0012"
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "report")} == {
        "report/accuracy.png",
        "report/early_stop.png",
        "report/accuracy_by_macs.png",
        "report/accuracy_by_latency.png",
        "report/layer_density.png",
        "report/masks.json",
        "report/cost.json",
    }
    # the mask analytics by level, recomputed here from the masks on disk
    ticket = [Mask.load(layout.mask_path(RunKey(0, level))) for level in (1, 2)]
    snip = Mask.load(layout.mask_path(RunKey(0, 2, "snip")))
    both = sum(int((ticket[0][n] & ticket[1][n]).sum()) for n in ticket[0])
    either = sum(int((ticket[0][n] | ticket[1][n]).sum()) for n in ticket[0])
    previous = client.get_metric_history(parent.info.run_id, "mask_jaccard_previous_level")
    assert [(m.step, m.value) for m in previous] == [(2, pytest.approx(both / either))]
    kept = sum(int((ticket[1][n] & snip[n]).sum()) for n in snip)
    union = sum(int((ticket[1][n] | snip[n]).sum()) for n in snip)
    with_snip = client.get_metric_history(parent.info.run_id, "mask_jaccard_snip")
    assert {m.step: m.value for m in with_snip}[2] == pytest.approx(kept / union)
    output = client.get_metric_history(parent.info.run_id, "layer_density/output.weight")
    expected = {level: ticket[level - 1].layer_densities()["output.weight"] for level in (1, 2)}
    assert {m.step: m.value for m in output} == pytest.approx(expected)
    metric_names = None
    for child in children:
        tags = child.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["replicate"] == "0" and tags["experiment_hash"] == config.hash
        key = RunKey(0, int(tags["level"]), tags["branch"])
        on_disk = layout.read_metrics(key)
        assert float(tags["density"]) == pytest.approx(on_disk["density"], abs=1e-6)
        assert child.info.status == "FINISHED"
        assert child.data.params["pruning.fraction"] == "0.2"
        assert child.data.metrics["final_accuracy"] == pytest.approx(on_disk["final_accuracy"])
        assert tags["accuracy_split"] == "test"  # the split behind the accuracies, named
        history = client.get_metric_history(child.info.run_id, "test_accuracy")
        steps = sorted(m.step for m in history)
        assert steps == [row["iteration"] for row in on_disk["history"]]
        names = {name for name in child.data.metrics if not name.startswith("system/")}
        metric_names = metric_names or names
        assert names == metric_names  # the compare view lines branches up by level
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert ("mask.pt" in artifacts) == (key.level > 0)
    assert {"test_accuracy", "val_loss", "train_loss", "lr", "early_stop_iteration"} <= metric_names
    # the machine's use, sampled every second while the runs trained
    sampled = [set(child.data.metrics) for child in children]
    assert any("system/cpu_utilization_percentage" in names for names in sampled)
    assert any("system/system_memory_usage_megabytes" in names for names in sampled)


def test_report_json_and_plots(experiment):
    cwd, layout, config, _ = experiment
    result = scale_lth(cwd, "report", SMOKE, *OVERRIDES, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = report["rows"]
    assert {(r["level"], r["branch"]) for r in rows} == {(0, "main")} | {
        (level, branch) for level in (1, 2) for branch in ["main", *BRANCHES]
    }
    for row in rows:
        assert {"level", "branch", "weights_remaining", "accuracy_mean", "accuracy_std",
                "early_stop_iteration", "replicates", "macs", "latency_ms"} <= set(row)  # fmt: skip
        assert row["replicates"] == 1 and 0 < row["weights_remaining"] <= 1
        assert row["accuracy_split"] == "test" and row["early_stop_split"] == "val"
    densities = report["masks"]["densities"]["main"]
    for level in (1, 2):
        ticket = Mask.load(layout.mask_path(RunKey(0, level)))
        for name, keep in ticket.items():
            assert densities[name][str(level)] == pytest.approx(keep.sum().item() / keep.numel())
    assert {(o["kind"], o["level"]) for o in report["masks"]["overlaps"]} == {("levels", 2)} | {
        ("methods", level) for level in (1, 2)
    }
    for found in report["stability_to_pruning"]:  # iterative: level l against level l - 1
        level = found["level"]
        ticket = Mask.load(layout.mask_path(RunKey(0, level)))
        mine = torch.load(layout.final_path(RunKey(0, level)))
        source = torch.load(layout.final_path(RunKey(0, level - 1)))
        difference = sum(float(((mine[n] - source[n]) * keep).double().pow(2).sum())
                         for n, keep in ticket.items())  # fmt: skip
        assert found["source"] == level - 1
        assert found["distance"] == pytest.approx(math.sqrt(difference), rel=1e-9)
    assert [found["level"] for found in report["stability_to_pruning"]] == [1, 2]
    assert (layout.root / "report" / "layer_density.png").stat().st_size > 10_000
    assert (layout.root / "report" / "accuracy.png").stat().st_size > 10_000
    assert (layout.root / "report" / "early_stop.png").stat().st_size > 10_000


def test_the_console_written_to_a_file_is_plain_lines(experiment):
    """The lottery's output went to a pipe, as to a SLURM log: no escape codes, no Ray worker
    prefixes, a line when each run starts, at each evaluation and when it ends."""
    _, layout, config, result = experiment
    text = result.stdout + result.stderr
    assert "\x1b" not in text
    assert not [line for line in text.splitlines() if re.match(r"\(\w+ pid=\d+", line)]
    for key in layout.finished():
        steps = [row["iteration"] for row in layout.read_metrics(key)["history"]]
        total = steps[-1]
        assert f"[{key}] training at " in result.stdout
        for step in steps:
            assert f"[{key}] step {step} of {total}: val acc " in result.stdout
        assert f"[{key}] done: " in result.stdout


def test_rerunning_a_finished_experiment_trains_nothing_and_prints_the_same_table(experiment):
    cwd, layout, _, first = experiment
    before = {key: layout.metrics_path(key).stat().st_mtime_ns for key in layout.finished()}
    again = scale_lth(cwd, "lottery", SMOKE, *OVERRIDES, "--quiet", timeout=120)
    assert again.returncode == 0, again.stderr
    assert "Nothing to do" in again.stdout
    table = first.stdout[first.stdout.index("level   weights") : first.stdout.index("cells:")]
    assert table in again.stdout
    assert {key: layout.metrics_path(key).stat().st_mtime_ns for key in layout.finished()} == before


def test_mlflow_has_a_curve_run_per_method_matching_the_report(experiment):
    """A curve run per method, each point equal to `report --json`'s row (two report writers
    at once make them once: test_concurrency); runs named for what they are and timed by their
    own training, not by when their events were delivered."""
    cwd, layout, config, _ = experiment
    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    mlflow_experiment = client.get_experiment_by_name("smoke")
    runs = client.search_runs([mlflow_experiment.experiment_id])
    report = scale_lth(cwd, "report", SMOKE, *OVERRIDES, "--json")
    assert report.returncode == 0, report.stderr
    curves = {r.data.tags["method"]: r for r in runs if r.data.tags.get("run_kind") == "curve"}
    assert set(curves) == {"main", *BRANCHES}
    assert len([r for r in runs if r.data.tags.get("run_kind") == "summary"]) == 1
    short = config.hash[:6]
    for method, run in curves.items():
        assert run.info.run_name == f"curve · {method} · smoke"
        tags = run.data.tags
        assert tags["experiment_hash"] == config.hash and tags["replicates"] == "1"
        assert tags["config.pruning.scope"] == "layer"  # a setting smoke.yaml changes
    for row in json.loads(report.stdout)["rows"]:
        run_id = curves[row["branch"]].info.run_id
        level, at_bp = row["level"], round(row["weights_remaining"] * 10_000)
        for name, step, value in [
            ("test_accuracy", level, row["accuracy_mean"]),
            ("test_accuracy_std", level, row["accuracy_std"]),
            ("early_stop_iteration", level, row["early_stop_iteration"]),
            ("weights_remaining", level, row["weights_remaining"]),
            ("test_accuracy_by_weights_remaining_bp", at_bp, row["accuracy_mean"]),
        ]:
            points = {m.step: m.value for m in client.get_metric_history(run_id, name)}
            assert points[step] == pytest.approx(value, rel=1e-12), (row, name)
    note = mlflow_experiment.tags["mlflow.note.content"]
    assert str(layout.report_dir) in note and "scale-lth lottery" in note
    for run in runs:
        tags = run.data.tags
        if tags.get("run_kind") == "trunk":
            assert run.info.run_name == f"replicate 0 · smoke · {short}"
        if tags.get("run_kind") != "level":
            continue
        key = RunKey(0, int(tags["level"]), tags["branch"])
        assert run.info.run_name == f"level {key.level} · {key.branch} · r0"
        recorded = layout.read_metrics(key)
        assert run.info.start_time == int(recorded["trained_from"] * 1000)
        assert run.info.end_time == int(recorded["trained_until"] * 1000)


def test_a_baseline_can_be_added_to_an_existing_trunk(experiment, tmp_path):
    """`scale-lth branch` trains one baseline at the chosen levels, reusing the trunk (here the
    reference's tickets alone, copied)."""
    cwd, layout, config, _ = experiment
    trunk_only = load(SMOKE, [*OVERRIDES, "baselines.branches=[]"])
    assert trunk_only.experiment_dir == config.experiment_dir  # which baselines run: no rename
    root = tmp_path / layout.root.relative_to(cwd)
    baselines_and_reports = shutil.ignore_patterns(*BRANCHES, "report", "tracking", "ray")
    shutil.copytree(layout.root, root, ignore=baselines_and_reports)
    assert {key.branch for key in Layout(root).finished()} == {"main"}
    branch = scale_lth(tmp_path, "branch", "snip", SMOKE, *OVERRIDES, "--levels", "2", "--quiet")
    assert branch.returncode == 0, branch.stderr[-3000:]
    finished = Layout(root).finished()
    assert [k for k in finished if k.branch != "main"] == [RunKey(0, 2, "snip")]
    assert Mask.load(Layout(root).mask_path(RunKey(0, 2, "snip"))) == Mask.load(
        layout.mask_path(RunKey(0, 2, "snip"))
    )


def test_raising_the_levels_trains_only_the_new_runs_in_the_same_folder(experiment, tmp_path):
    """`pruning.levels` says how far the experiment goes: raising it keeps the folder, leaves
    every finished file alone and trains the new level's ticket and baselines only."""
    cwd, layout, config, _ = experiment
    root = tmp_path / layout.root.relative_to(cwd)
    shutil.copytree(layout.root, root)
    untouched = {  # every result file: the report is redrawn, ray/ is Ray Train's own and a
        # lock file records its latest holder
        path: path.stat().st_mtime_ns
        for path in root.rglob("*")
        if path.is_file()
        and not {"report", "ray"} & set(path.relative_to(root).parts)
        and not path.name.endswith(".lock")
    }
    extended = load(SMOKE, [*OVERRIDES, "pruning.levels=3"])
    assert extended.experiment_dir.name == root.name
    result = scale_lth(tmp_path, "lottery", SMOKE, *OVERRIDES, "pruning.levels=3", "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 of 13 runs to train" in result.stdout
    new = set(Layout(root).finished()) - set(layout.finished())
    assert new == {RunKey(0, 3)} | {RunKey(0, 3, branch) for branch in BRANCHES}
    assert {path: path.stat().st_mtime_ns for path in untouched} == untouched
    previous = Mask.load(root / RunKey(0, 2).run_id / "mask.pt").layer_kept()
    rates = per_layer_rates(Mask.load(root / RunKey(0, 3).run_id / "mask.pt"))
    expected = {name: kept - math.ceil(rates[name] * kept) for name, kept in previous.items()}
    assert Mask.load(root / RunKey(0, 3).run_id / "mask.pt").layer_kept() == expected
