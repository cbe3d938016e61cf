"""A real lottery on the GPU through Ray Train: configs/imagenet_resnet18.yaml shrunk as
tests/lottery/test_shipped_configs.py shrinks every shipped config (2 levels, 4 steps a run,
32-pixel crops), on an ImageNet-layout folder of JPEG photos written by `scale-lth data write`
(a seeded holdout of the training images as val, the folder's val/ as test), with every
baseline, one GPU worker in an NCCL group, bf16 autocast, channels-last, and MLflow's system
metrics sampled every second into the local sqlite store.

Checked against definitions: each level's ticket is the magnitude cut of its source level's
final weights and keeps exactly ``k - ceil(0.2 k)`` of the ``k`` weights left (global ranking),
the baselines keep the ticket's counts, pruned weights are exactly zero after training, early
stopping is read on val and every accuracy on test, SNIP's branch trained at each level.

Deselected where there is no CUDA device (tests/conftest.py); bench/gpu/check.sh runs it on the
GPU machine once bench/gpu/install-stack.sh has installed Ray, MLflow and submitit there.
"""

import math
import os

import pytest
from mlflow import MlflowClient

from scale_lth import methods
from scale_lth.cli import main
from scale_lth.config import load
from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey
from tests.conftest import CONFIGS
from tests.formats import write_photo_imagefolder
from tests.lottery.test_shipped_configs import STEPS, check_early_stop, check_masks, shrunk
from tests.processes import scale_lth
from tests.pruned import assert_pruned_weights_zero
from tests.runs import runner

pytestmark = [pytest.mark.gpu, pytest.mark.integration]

CONFIG = CONFIGS / "imagenet_resnet18.yaml"
BASELINES = methods.baselines()  # every one the registry has, Scratch-B included
ON_THE_GPU = [
    f"baselines.branches=[{', '.join(BASELINES)}]",
    "scaling.use_gpu=true",  # one worker, one GPU: an NCCL group of one rank
    "training.amp=bf16",
    "training.channels_last=true",
    "tracking.enabled=true",  # the default store: ./mlflow.db
    "tracking.system_metrics=true",
]


@pytest.fixture(scope="module")
def lottery(tmp_path_factory):
    """(working folder, layout, config, completed process) of the lottery, run once."""
    cwd = tmp_path_factory.mktemp("gpu-lottery")
    write_photo_imagefolder(cwd / "jpeg", train=16, val=4)  # 48 training photos, 12 in val/
    data = cwd / "imagenet"
    write = ["data", "write", "--source", "imagefolder", "--root", str(cwd / "jpeg")]
    assert main([*write, "--out", str(data), "--holdout", "12"]) == 0
    overrides = [*shrunk(CONFIG, {"imagenet": data}, cwd / "results"), *ON_THE_GPU]
    env = {**os.environ, "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL": "1"}
    result = scale_lth(cwd, "lottery", str(CONFIG), *overrides, "--quiet", env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    config = load(CONFIG, overrides)
    return cwd, Layout(config.experiment_dir), config, result


def branches(config) -> list[str]:
    return [config.run_branch(method) for method in BASELINES]


def test_every_run_trained_on_a_gpu_worker_over_nccl(lottery):
    _, layout, config, result = lottery
    expected = {RunKey(0, 0)} | {
        RunKey(0, level, branch)
        for level in range(1, config.pruning.levels + 1)
        for branch in [methods.TICKET, *branches(config)]
    }
    assert set(layout.finished()) == expected
    assert "Starting 1 x 1 Ray Train workers (GPU, NCCL)" in result.stdout
    for key in expected:
        metrics = layout.read_metrics(key)
        assert metrics["world_size"] == 1 and metrics["resumed_from"] is None, key
        assert all(math.isfinite(row["val_loss"]) for row in metrics["history"]), key
    assert layout.read_metrics(RunKey(0, 0))["total_steps"] == STEPS


def test_each_ticket_is_the_magnitude_cut_keeping_the_exact_count(lottery):
    _, layout, config, _ = lottery
    check_masks(runner(config), config.pruning.levels)  # nested, and the cut of its source
    kept = Mask.load(layout.mask_path(RunKey(0, 1))).num_total
    for level in range(1, config.pruning.levels + 1):
        kept -= math.ceil(config.pruning.fraction * kept)  # global: 20% of what is left
        ticket = Mask.load(layout.mask_path(RunKey(0, level)))
        assert ticket.num_kept == kept, level
        random = Mask.load(layout.mask_path(RunKey(0, level, "random_prune")))
        snip = Mask.load(layout.mask_path(RunKey(0, level, config.run_branch("snip"))))
        assert random.layer_kept() == ticket.layer_kept() and random != ticket
        assert snip.num_kept == kept and snip != ticket
        for method in ("reinit", "scratch_b"):  # the ticket's own mask on fresh weights
            assert layout.read_metrics(RunKey(0, level, config.run_branch(method)))["kept"] == kept


def test_pruned_weights_are_exactly_zero_after_training_on_the_gpu(lottery):
    _, layout, _, _ = lottery
    assert_pruned_weights_zero(layout)


def test_early_stopping_reads_val_and_accuracies_are_on_test(lottery):
    _, _, config, _ = lottery
    check_early_stop(runner(config))


def test_the_snip_branch_trained_at_every_level_from_step_zero(lottery):
    _, layout, config, _ = lottery
    for level in range(1, config.pruning.levels + 1):
        metrics = layout.read_metrics(RunKey(0, level, config.run_branch("snip")))
        assert metrics["start_step"] == 0 and metrics["history"][0]["iteration"] == 0
        assert metrics["density"] == pytest.approx(
            Mask.load(layout.mask_path(RunKey(0, level))).density
        )


def test_mlflow_holds_every_run_with_the_gpus_system_metrics(lottery):
    cwd, layout, config, _ = lottery
    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(config.name)
    runs = client.search_runs([experiment.experiment_id])
    children = [run for run in runs if run.data.tags.get("run_kind") == "level"]
    assert len(children) == len(layout.finished())
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["accuracy_split"] == "test"
        key = RunKey(0, int(child.data.tags["level"]), child.data.tags["branch"])
        on_disk = layout.read_metrics(key)
        assert child.data.metrics["final_accuracy"] == pytest.approx(on_disk["final_accuracy"])
    sampled = [set(child.data.metrics) for child in children]
    assert any("system/gpu_0_utilization_percentage" in names for names in sampled)
    memory = [
        metric.value
        for child in children
        if "system/gpu_0_memory_usage_megabytes" in child.data.metrics
        for metric in client.get_metric_history(
            child.info.run_id, "system/gpu_0_memory_usage_megabytes"
        )
    ]
    assert memory and max(memory) > 0
