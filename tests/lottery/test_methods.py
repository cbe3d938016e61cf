"""Each method against its definition, on digits in this process (a world of one):

- one-shot pruning (``pruning.method: oneshot``): level l's mask is magnitude pruning of level
  0's trained weights to the count l iterative levels keep, checked against
  ``torch.nn.utils.prune`` (either of equal magnitudes at the cut may go); masks of growing
  sparsity are nested; a level needs only level 0;
- learning-rate rewinding (``rewinding.mode: lr``): the level starts from the previous level's
  trained weights x mask at step k with the schedule's rate at k;
- fine-tuning (``rewinding.mode: finetune``): the same start, T-k steps at the final rate;
- Scratch-B: the ticket's mask on fresh weights for the dense network's compute, steps and
  milestones stretched by a FLOPs ratio computed here by hand.

A run's first evaluation row is measured before its first step, so its validation loss is the
loss of the weights it starts from: the tests evaluate the weights the definition names and
compare.
"""

import math

import pytest
import torch
from torch.nn.utils import prune

from scale_lth import models
from scale_lth.lottery.job import Job
from scale_lth.pruning import Mask
from scale_lth.results import RunKey
from tests.masks import assert_same_cut
from tests.runs import runner, start_loss
from tests.training.test_rewind_and_resume import SCHEDULE as REWIND_SCHEDULE

SCHEDULE = [*REWIND_SCHEDULE, "pruning.levels=1", "baselines.branches=[]"]
LR_AFTER_WARMUP, LR_AFTER_MILESTONE = 0.1, 0.1 * 0.1


def kept_after(count: int, rate: float, levels: int) -> int:
    """What ``levels`` iterative levels keep of ``count`` weights: each removes ceil(rate x n)."""
    for _ in range(levels):
        count -= math.ceil(rate * count)
    return count


def test_oneshot_levels_prune_the_dense_weights_straight_to_their_density(smoke_config):
    experiment = runner(smoke_config("pruning.method=oneshot", "pruning.levels=3"))
    experiment.execute(Job([0], [0, 3]))  # level 3 needs nothing but level 0
    layout = experiment.layout
    assert layout.is_done(RunKey(0, 3)) and not layout.is_done(RunKey(0, 1))
    dense = torch.load(layout.final_path(RunKey(0, 0)))
    probe = experiment.store.network(dense)
    output = models.output_layer(probe)
    previous = None
    for level in (1, 2, 3):
        mask = Mask.load(layout.mask_path(RunKey(0, level)))
        model = experiment.store.network(dense)  # torch's pruning rewrites the modules
        modules = dict(model.named_modules())
        for name in models.prunable(model):
            rate = 0.1 if name == output else 0.2  # smoke.yaml: layer-wise, output_fraction 0.1
            weight = dense[name]
            module = modules[name.rsplit(".", 1)[0]]
            amount = weight.numel() - kept_after(weight.numel(), rate, level)
            prune.l1_unstructured(module, "weight", amount=amount)
            reference = {name: module.weight_mask.bool()}
            everything = {name: torch.ones_like(mask[name])}
            assert_same_cut(dict(mask.items()), reference, {name: weight.abs()}, everything, level)
            if previous is not None:
                assert not (mask[name] & ~previous[name]).any(), (level, name)  # nested
        previous = mask
    metrics = layout.read_metrics(RunKey(0, 3))
    assert metrics["kept"] == previous.num_kept
    rewind = torch.load(layout.rewind_path(0))
    assert metrics["history"][0]["val_loss"] == start_loss(experiment, rewind["model"], previous)


@pytest.mark.parametrize("mode", ["lr", "finetune"])
def test_lr_rewinding_and_finetuning_start_from_the_trained_weights_at_step_k(smoke_config, mode):
    experiment = runner(smoke_config(*SCHEDULE, f"rewinding.mode={mode}"))
    experiment.execute(Job([0], [0, 1]))
    layout = experiment.layout
    trained = torch.load(layout.final_path(RunKey(0, 0)))
    mask = Mask.load(layout.mask_path(RunKey(0, 1)))
    metrics = layout.read_metrics(RunKey(0, 1))
    rows = metrics["history"]
    assert metrics["start_step"] == 20 and metrics["total_steps"] == 60
    assert [row["iteration"] for row in rows] == [20, 30, 40, 50, 60]  # T-k steps
    assert rows[0]["val_loss"] == start_loss(experiment, trained, mask)
    dense_rows = layout.read_metrics(RunKey(0, 0))["history"]
    if mode == "lr":  # the dense run's rates from step k on
        assert [row["lr"] for row in rows] == [row["lr"] for row in dense_rows[2:]]
        assert rows[0]["lr"] == pytest.approx(0.1 * 20 / 30)  # mid-warmup at k
    else:  # every step at the rate of the schedule's last step
        assert all(row["lr"] == pytest.approx(LR_AFTER_MILESTONE) for row in rows)


def test_scratch_b_trains_the_tickets_mask_for_the_dense_compute(smoke_config):
    config = smoke_config(*SCHEDULE, "model.name=conv2", "baselines.branches=[scratch_b]")
    experiment = runner(config)
    experiment.execute(Job([0], [0, 1], branches=["scratch_b"]))
    layout = experiment.layout
    key = RunKey(0, 1, "scratch_b")
    mask = Mask.load(layout.mask_path(key))
    assert mask == Mask.load(layout.mask_path(RunKey(0, 1)))
    # conv2 on 8x8 digits: both 3x3 'same' convolutions come before the pool, so each conv
    # weight is used at 8 x 8 positions per image; each fully connected weight once.
    weights = dict(experiment.store.probe.named_parameters())
    uses = {
        name: 64 if w.dim() == 4 else 1 for name, w in weights.items() if name.endswith("weight")
    }
    dense = sum(uses[name] * weights[name].numel() for name in uses)
    sparse = sum(uses[name] * int(mask[name].sum()) for name in uses)
    factor = min(dense / sparse, 2.0)
    assert 1.1 < factor < 2.0
    metrics = layout.read_metrics(key)
    assert metrics["compute_factor"] == pytest.approx(factor)
    assert metrics["start_step"] == 0 and metrics["total_steps"] == round(60 * factor)
    milestone = round(40 * factor)
    for row in metrics["history"]:
        if 30 <= row["iteration"]:  # after warmup: the rate drops at the stretched milestone
            expected = LR_AFTER_WARMUP if row["iteration"] < milestone else LR_AFTER_MILESTONE
            assert row["lr"] == pytest.approx(expected), row["iteration"]
    capped = runner(smoke_config(*SCHEDULE, "baselines.scratch_b_max_factor=1.05"))
    assert capped.config.run_branch("scratch_b").startswith("scratch_b-")  # its own runs


def test_a_diverged_run_is_never_pruned(smoke_config):
    """Magnitudes of NaN weights mean nothing: the level stops with the file and the fix."""
    experiment = runner(smoke_config())
    experiment.execute(Job([0], [0]))
    path = experiment.layout.final_path(RunKey(0, 0))
    weights = torch.load(path)
    weights["hidden.0.weight"][0, 0] = float("nan")
    torch.save(weights, path)
    with pytest.raises(ValueError, match="NaN or infinite weights .hidden.0.weight.: that run"):
        experiment.execute(Job([0], [1]))
    assert not experiment.layout.mask_path(RunKey(0, 1)).exists()
