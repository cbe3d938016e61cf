"""The run graph scheduled on a real 2-CPU Ray cluster (the tests' `ray start` head): two
run slots train baselines beside later levels' tickets and end where a sequential run
ends."""

import subprocess

import pytest
import torch

from scale_lth.config import load
from scale_lth.lottery.graph import runs_read
from scale_lth.methods import start_of
from scale_lth.pruning import Mask
from tests.conftest import CONFIGS
from tests.processes import SCALE_LTH

pytestmark = [pytest.mark.integration]

SMOKE = str(CONFIGS / "smoke.yaml")
# 3 levels x 3 baselines: a level's baselines become ready with the next level's ticket, so
# the two slots train them side by side however short the runs are.
GRAPH = ["pruning.levels=3", "training.duration=600it", "tracking.enabled=false"]


def lottery(ray_head, folder, *more):
    overrides = [*GRAPH, f"output_root={folder}", f"scaling.address={ray_head.address}", *more]
    result = subprocess.run(
        [SCALE_LTH, "lottery", SMOKE, *overrides, "--quiet"],
        cwd=folder.parent,
        env=ray_head.client_environment(),
        capture_output=True,
        text=True,
        timeout=900,  # a hang guard, not a speed check
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return load(SMOKE, overrides).experiment_dir, result.stdout


def overlap(a: dict, b: dict) -> bool:
    return a["trained_from"] < b["trained_until"] and b["trained_from"] < a["trained_until"]


def test_two_slots_train_baselines_beside_later_tickets_and_match_a_sequential_run(
    ray_head, tmp_path
):
    from scale_lth.results import Layout, RunKey

    one_worker = ["scaling.num_workers=1"]
    side_by_side, stdout = lottery(
        ray_head, tmp_path / "slots", *one_worker, "scaling.concurrent_runs=2"
    )
    sequential, _ = lottery(
        ray_head, tmp_path / "sequential", *one_worker, "scaling.concurrent_runs=1"
    )
    assert "Starting 2 x 1 Ray Train workers" in stdout
    assert "Runs: 0 running, 0 ready, 0 waiting, 13 of 13 done" in stdout
    layout, reference = Layout(side_by_side), Layout(sequential)
    assert layout.finished() == reference.finished() and len(layout.finished()) == 13
    metrics = {key: layout.read_metrics(key) for key in layout.finished()}
    for key, run in metrics.items():  # nothing started before what it reads was on disk
        for before in runs_read(start_of(key.method, "weights"), key, "iterative"):
            assert run["trained_from"] >= metrics[before]["trained_until"], (key, before)
    # the second slot takes baselines while the first trains the later levels' tickets (the
    # groups start a few seconds apart, so which level's ticket is not fixed)
    assert any(
        overlap(metrics[RunKey(0, later)], metrics[RunKey(0, level, branch)])
        for level in (1, 2)
        for later in range(level + 1, 4)
        for branch in ("reinit", "random_prune", "snip")
    )
    for key in layout.finished():
        expected = reference.read_metrics(key)
        for name in ("final_accuracy", "best_accuracy", "early_stop_iteration", "kept"):
            assert metrics[key][name] == expected[name], (key, name)
        if key.level > 0:
            assert Mask.load(layout.mask_path(key)) == Mask.load(reference.mask_path(key))
        final, wanted = torch.load(layout.final_path(key)), torch.load(reference.final_path(key))
        assert all(torch.equal(final[name], wanted[name]) for name in wanted), key
