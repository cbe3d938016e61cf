"""Every weight-level config in configs/ runs end to end through its own path (the channel-level
ones, through tests/lottery/test_channel_tickets.py's definitions), shrunk by overrides (a few
steps, small images, 2 levels, one worker in this process) but with its data format (digits,
MNIST idx, CIFAR-10 pickles, an ImageNet folder of real JPEG photos of varied sizes), its
pipeline, its network, its pruning rates and method, and its baselines. The driver's checks
and step counts come first, as for `scale-lth lottery`; Ray is left out (tests/lottery's
end-to-end tests run it).

Each result is checked against definitions recomputed here from the files:
- each level's mask is nested in the previous one and equals magnitude pruning of its source
  level's final weights (``torch.nn.utils.prune``, global and per-layer at the config's rates;
  among equal magnitudes at the cut either may go);
- each method starts from what its definition says (the validation loss of its first row,
  measured before any step, is the loss of the weights x mask the definition names);
- the recorded early-stop iteration is the iteration of minimum validation loss.
"""

import fnmatch
import math

import pytest
import torch
from torch.nn.utils import prune

from scale_lth import models
from scale_lth.config import load
from scale_lth.driver import check
from scale_lth.lottery.job import Job
from scale_lth.lottery.runner import Runner
from scale_lth.methods import TICKET
from scale_lth.pruning import Mask
from scale_lth.results import RunKey
from scale_lth.training.session import Session
from tests.conftest import CONFIGS
from tests.masks import assert_same_cut, everything, magnitudes_of
from tests.runs import start_loss

EVERY_CONFIG = sorted(CONFIGS.glob("*.yaml"))
CHANNEL_LEVEL = [path for path in EVERY_CONFIG if load(path).pruning.granularity == "channel"]
SHIPPED = [path for path in EVERY_CONFIG if path not in CHANNEL_LEVEL]
STEPS = 4  # each run's iterations: evaluated at 0, 2 and 4


def shrunk(path, data: dict, output_root) -> list[str]:
    """Overrides that keep a config's path and make it seconds long."""
    config = load(path)
    overrides = [
        f"data.path={data[config.data.dataset]}",
        f"output_root={output_root}",
        "replicates=1",
        "pruning.levels=2",
        "data.batch_size=4",
        f"training.lr={config.training.lr * 4 / config.data.batch_size}",  # the linear rule
        "data.loader_workers=1",
        f"training.duration={STEPS}it",
        "training.eval_every=2it",
        "training.checkpoint_every=1000it",  # none mid-run: resuming is tests/training's
        "scaling.num_workers=1",
        "scaling.cpus_per_worker=1",
        "scaling.use_gpu=false",
        "tracking.enabled=false",
    ]
    if config.training.warmup.amount:
        overrides.append("training.warmup=2it")
    if config.training.milestones:
        overrides.append("training.milestones=[3it]")
    if config.rewinding.step.amount:
        overrides.append("rewinding.step=2it")
    if config.data.dataset == "imagenet":
        overrides += ["data.resolution=32", "data.eval_resolution=32"]
    return overrides


def rates(config, model) -> dict[str, float | None]:
    """Each pruned tensor's own rate (None: ranked globally), as the config's comments define."""
    pruning = config.pruning
    names = [n for n in models.prunable(model)
             if not any(fnmatch.fnmatchcase(n, p) for p in pruning.ignore)]  # fmt: skip
    found = {}
    for name in names:
        pattern = next((p for p in pruning.layer_fractions if fnmatch.fnmatchcase(name, p)), None)
        if pattern is not None:
            found[name] = pruning.layer_fractions[pattern]
        elif name == models.output_layer(model) and pruning.output_fraction is not None:
            found[name] = pruning.output_fraction
        else:
            found[name] = pruning.fraction if pruning.scope == "layer" else None
    return found


def magnitude_mask(config, model, previous: Mask | None) -> dict[str, torch.Tensor]:
    """What magnitude pruning keeps of ``model``'s weights, by torch.nn.utils.prune: the
    ``previous`` mask first, then ceil(rate x alive) more per rated tensor and ceil(fraction x
    alive) more across the rest together."""
    modules = dict(model.named_modules())
    own = rates(config, model)

    def owner(name):
        return modules[name.rsplit(".", 1)[0]]

    for name in own:
        if previous is not None:
            prune.custom_from_mask(owner(name), "weight", previous[name])
    alive = {name: int(previous[name].sum()) if previous else owner(name).weight.numel()
             for name in own}  # fmt: skip
    ranked = [name for name, rate in own.items() if rate is None]
    if ranked:
        count = math.ceil(config.pruning.fraction * sum(alive[name] for name in ranked))
        prune.global_unstructured([(owner(name), "weight") for name in ranked],
                                  pruning_method=prune.L1Unstructured, amount=count)  # fmt: skip
    for name, rate in own.items():
        if rate is not None:
            prune.l1_unstructured(owner(name), "weight", amount=math.ceil(rate * alive[name]))
    return {name: owner(name).weight_mask.bool() for name in own}


def check_masks(runner: Runner, levels: int) -> None:
    layout, config = runner.layout, runner.config
    previous = None
    for level in range(1, levels + 1):
        source = 0 if config.pruning.method == "oneshot" else level - 1
        weights = torch.load(layout.final_path(RunKey(0, source)))
        expected = magnitude_mask(config, runner.store.network(weights), previous)
        mask = Mask.load(layout.mask_path(RunKey(0, level)))
        assert set(mask) == set(expected)
        alive = dict(previous.items()) if previous is not None else everything(expected)
        model = runner.store.network(weights)
        own = rates(config, model)
        magnitudes = magnitudes_of(weights, expected)
        ranked = [name for name, rate in own.items() if rate is None]
        for group in ([ranked] if ranked else []) + [[n] for n, r in own.items() if r is not None]:
            assert_same_cut(dict(mask.items()), {n: expected[n] for n in group}, magnitudes,
                            alive, (level, group[0]))  # fmt: skip
        for name in expected:
            if previous is not None:
                assert not (mask[name] & ~previous[name]).any(), (level, name)
        previous = mask


def check_starts(runner: Runner, levels: int) -> None:
    layout, store = runner.layout, runner.store
    init = torch.load(layout.init_path(0))
    rewind = torch.load(layout.rewind_path(0))
    for level in range(1, levels + 1):
        ticket = Mask.load(layout.mask_path(RunKey(0, level)))
        for key in [k for k in layout.finished() if k.level == level]:
            metrics = layout.read_metrics(key)
            own = Mask.load(layout.mask_path(key)) if not key.is_ticket else ticket
            if key.method == TICKET:  # IMP, weight rewinding: step-k weights x the ticket
                weights, step = rewind["model"], rewind["step"]
                assert own == ticket
            elif key.method in ("reinit", "scratch_b"):  # fresh weights x the ticket's mask
                weights, step = store.fresh_weights(store.derived_seed(key)), 0
                assert own == ticket
                assert all(not torch.equal(weights[n], init[n]) for n in ticket)
            elif key.method == "random_prune":  # step-k weights x a random mask, same counts
                weights, step = rewind["model"], rewind["step"]
                assert own.layer_kept() == ticket.layer_kept() and own != ticket
            elif key.method == "snip":  # init weights x SNIP's mask, the same total count
                weights, step = init, 0
                assert own.num_kept == ticket.num_kept
            else:
                raise AssertionError(f"no definition here for {key.method}: add one")
            assert metrics["start_step"] == step, key
            if key.method == "scratch_b":
                factor = metrics["compute_factor"]
                assert 1 < factor <= runner.config.baselines.scratch_b_max_factor
                assert metrics["total_steps"] == round(STEPS * factor)
            first = metrics["history"][0]
            assert first["iteration"] == step
            assert first["val_loss"] == pytest.approx(start_loss(runner, weights, own), rel=1e-6)


def check_early_stop(runner: Runner) -> None:
    """Early stopping reads val (on ImageNet, the seeded holdout of the training images) and
    every accuracy is reported on test (on ImageNet, the folder's own val/)."""
    for key in runner.layout.finished():
        metrics = runner.layout.read_metrics(key)
        best = min(metrics["history"], key=lambda row: row["val_loss"])  # the first of equals
        assert metrics["early_stop_iteration"] == best["iteration"], key
        assert metrics["accuracy_split"] == "test"
        assert metrics["final_accuracy"] == metrics["history"][-1]["test_accuracy"]
        assert metrics["early_stop_accuracy"] == best["test_accuracy"]


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_a_shipped_config_runs_end_to_end(path, datasets, tmp_path):
    config = load(path, shrunk(path, datasets, tmp_path / "results")).resolved()
    branches = [config.run_branch(method) for method in config.baselines.branches]
    job = Job([0], range(config.pruning.levels + 1), branches)
    checked = check(config, job)
    config, layout, steps = checked.config, checked.layout, checked.steps
    runner = Runner(config, Session(), steps)
    runner.execute(job)
    assert set(layout.finished()) == set(job.keys())
    check_masks(runner, config.pruning.levels)
    check_starts(runner, config.pruning.levels)
    check_early_stop(runner)
    assert steps.schedule.total == layout.read_metrics(RunKey(0, 0))["total_steps"] == STEPS
