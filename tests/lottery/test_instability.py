"""The instability analysis against its definitions, in this process: the two copies differ
only in SGD noise, the path's ends are the copies' own errors, the instability is the barrier
along it, and ``rewinding.step: auto`` takes the rewind point its rule names."""

import math

import numpy as np
import pytest
import torch

from scale_lth.data import DataInfo, eval_batches
from scale_lth.lottery.instability import choose_rewind
from scale_lth.lottery.job import Job
from scale_lth.lottery.starts import run_start
from scale_lth.pruning import Mask
from scale_lth.report.instability import format_instability, measured
from scale_lth.results import RunKey, instability_branch
from scale_lth.training.evaluation import evaluate
from tests.runs import runner

SHORT = ["training.duration=60it", "training.eval_every=20it", "pruning.levels=1"]


def copies(level: int, at: str) -> list[RunKey]:
    return [RunKey(0, level, instability_branch(part, at)) for part in ("a", "b")]


def test_the_two_copies_start_from_the_same_weights_and_read_different_orders(smoke_config):
    experiment = runner(smoke_config(*SHORT, "instability.steps=[20it]"))
    experiment.execute(Job([0], [0]))
    saved = torch.load(experiment.layout.point_path(0, 20))
    starts = [run_start(experiment.store, key, experiment.steps, None) for key in copies(0, "20it")]
    for start in starts:
        assert start.step == 20 and start.mask is None
        assert all(torch.equal(start.weights[name], saved[name]) for name in saved)
    # the trunk's own step-20 weights: the same training stopped there
    stopped = runner(smoke_config(*SHORT, "training.duration=20it"))
    stopped.execute(Job([0], [0]))
    at_20 = torch.load(stopped.layout.final_path(RunKey(0, 0)))
    assert all(torch.equal(at_20[name], saved[name]) for name in saved)

    orders = []
    for key in copies(0, "20it") + [RunKey(0, 0)]:
        train = experiment.run_data(key).train
        train.epoch = 0
        orders.append(torch.cat([labels for _, labels in train]))
    assert len(orders[0]) == len(orders[1]) == len(orders[2])  # whole batches of one split
    assert not torch.equal(orders[0], orders[1])  # in another order
    assert not torch.equal(orders[0], orders[2]) and not torch.equal(orders[1], orders[2])


def test_the_path_ends_are_the_copies_own_errors_and_its_barrier_is_the_instability(
    smoke_config,
):
    config = smoke_config(*SHORT, "instability.points=5", "instability.steps=[20it]")
    experiment = runner(config)
    experiment.execute(Job.instability_analysis(config, ["20it"], [1]))
    layout = experiment.layout
    for level, at in ((0, "20it"), (1, "rewind")):
        path = layout.read_metrics(RunKey(0, level, instability_branch("path", at)))
        first, second = copies(level, at)
        assert path["alphas"] == [0, 0.25, 0.5, 0.75, 1]
        assert path["step"] == 20 if level == 0 else 10  # smoke.yaml rewinds to 10it
        for split, errors in path["errors"].items():
            assert len(errors) == 5
            model = experiment.store.network(torch.load(layout.final_path(first)))
            batches = experiment.data.path_splits()[split]  # each whole: the digits are small
            own = 1 - evaluate(model, batches, torch.device("cpu"))["accuracy"]
            assert errors[-1] == pytest.approx(own, abs=1e-12)  # alpha 1: copy a itself
            if split != "train":  # the copy measured its own error at its last step
                last = layout.read_metrics(second)["history"][-1]
                assert errors[0] == pytest.approx(1 - last[f"{split}_accuracy"], abs=1e-12)
            barrier = max(errors) - (errors[0] + errors[-1]) / 2
            assert path["instability"][split] == pytest.approx(barrier)
        if level == 1:  # a level's copies train its ticket's mask from its rewind point
            ticket = Mask.load(layout.mask_path(RunKey(0, 1)))
            mask = Mask.load(layout.mask_path(first))
            assert all(torch.equal(mask[name], ticket[name]) for name in ticket)
            rewind = torch.load(layout.rewind_path(0))["model"]
            start = run_start(experiment.store, first, experiment.steps, None)
            assert all(torch.equal(start.weights[n], rewind[n]) for n in rewind)


def test_a_subsampled_path_is_the_barrier_on_one_seeded_subsample(smoke_config):
    config = smoke_config(
        *SHORT,
        "instability.points=4",
        "instability.steps=[20it]",
        "instability.train_examples=150",
        "instability.eval_examples=70",
        "seed=3",
    )
    experiment = runner(config)
    experiment.execute(Job.instability_analysis(config, ["20it"], []))
    layout = experiment.layout
    path = layout.read_metrics(RunKey(0, 0, instability_branch("path", "20it")))
    sizes = DataInfo.load(config.data_dir).splits
    assert path["examples"] == {"train": 150, **{split: 70 for split in sizes if split != "train"}}
    first, second = (torch.load(layout.final_path(key)) for key in copies(0, "20it"))
    for split, count in path["examples"].items():
        # the definition: the first `count` of a permutation drawn with the experiment's seed
        chosen = np.sort(np.random.default_rng(3).permutation(sizes[split])[:count])
        whole = eval_batches(
            config.data_dir, split, 500, options=experiment.data.loader_options(False)
        )
        images, labels = (torch.cat(parts)[chosen] for parts in zip(*whole, strict=True))
        by_hand = []
        for alpha in (0, 1 / 3, 2 / 3, 1):
            state = {n: alpha * t + (1 - alpha) * second[n] if t.is_floating_point() else t
                     for n, t in first.items()}  # fmt: skip
            model = experiment.store.network(state).eval()
            with torch.no_grad():
                wrong = (model(images).argmax(1) != labels).sum().item()
            by_hand.append(wrong / count)
        assert path["errors"][split] == pytest.approx(by_hand, abs=1e-12)
        barrier = max(by_hand) - (by_hand[0] + by_hand[-1]) / 2
        assert path["instability"][split] == pytest.approx(barrier, abs=1e-12)
    report = format_instability(measured(layout), {})
    assert "evaluated on 150 train, 70 val, 70 test examples" in report


@pytest.mark.parametrize(
    "values, threshold, chosen, stable",
    [
        ([0.30, 0.05, 0.01, 0.00], 0.02, 500, True),  # the earliest below, not the lowest
        ([0.01, 0.30, 0.00, 0.00], 0.02, 0, True),
        ([0.30, 0.20, 0.02, 0.03], 0.02, 2000, False),  # at the threshold is not below it
    ],
)
def test_auto_takes_the_earliest_candidate_under_the_threshold(values, threshold, chosen, stable):
    steps = [0, 100, 500, 2000]
    recorded = [
        {"step": step, "at": f"{step}it", "instability": {"val": value, "train": 0.0}}
        for step, value in zip(steps, values, strict=True)
    ]
    choice = choose_rewind(list(reversed(recorded)), threshold)  # in any order
    assert (choice["step"], choice["stable"], choice["split"]) == (chosen, stable, "val")
    assert choice["instability"] == {f"{s}it": v for s, v in zip(steps, values, strict=True)}


def test_an_auto_lottery_rewinds_to_the_chosen_candidate(smoke_config):
    # nothing is below a threshold this low, so the rule takes the latest candidate
    config = smoke_config(
        *SHORT,
        "rewinding.step=auto",
        "rewinding.candidates=[0it,20it]",
        "instability.threshold=1e-9",
        "instability.points=3",
    )
    experiment = runner(config)
    experiment.execute(Job.lottery(config))
    layout = experiment.layout
    choice = experiment.store.rewind_choice(0)
    measured = {
        at: layout.read_metrics(RunKey(0, 0, instability_branch("path", at)))["instability"]["val"]
        for at in ("0it", "20it")
    }
    assert choice["instability"] == measured and all(v > 1e-9 for v in measured.values())
    assert (choice["step"], choice["stable"]) == (20, False)
    ticket = layout.read_metrics(RunKey(0, 1))
    assert ticket["start_step"] == 20
    weights, step = experiment.store.rewind_point(0)
    saved = torch.load(layout.point_path(0, 20))
    assert step == 20 and all(torch.equal(weights[n], saved[n]) for n in saved)
    assert not layout.rewind_path(0).exists()  # no fixed k was saved
    assert math.isfinite(ticket["final_accuracy"])
