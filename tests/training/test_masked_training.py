"""Pruned weights stay exactly 0.0 through SGD momentum + weight decay, Adam and bf16 autocast."""

import pytest
import torch

from scale_lth import models
from scale_lth.config import load
from scale_lth.pruning import Mask
from scale_lth.training.loop import RunData, train_run
from scale_lth.training.session import Session


class ListBatches:
    """An in-memory stand-in for a loader: fixed batches, an ``epoch`` like FFCV's."""

    def __init__(self, batches):
        self.batches = batches
        self.epoch = 0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def data(seed: int = 0) -> RunData:
    generator = torch.Generator().manual_seed(seed)
    batches = [
        (
            torch.randn(16, 1, 8, 8, generator=generator),
            torch.randint(0, 10, (16,), generator=generator),
        )
        for _ in range(5)
    ]
    return RunData(ListBatches(batches), {"val": batches[:2], "test": batches[2:4]})


def half_mask(model) -> Mask:
    parameters = dict(model.named_parameters())
    generator = torch.Generator().manual_seed(3)
    return Mask(
        {
            n: torch.rand(parameters[n].shape, generator=generator) < 0.5
            for n in models.prunable(model)
        }
    )


@pytest.mark.parametrize(
    "overrides",
    [
        [
            "training.optimizer=sgd",
            "training.lr=0.5",
            "training.momentum=0.9",
            "training.weight_decay=0.01",
        ],
        [
            "training.optimizer=sgd",
            "training.lr=0.5",
            "training.momentum=0.9",
            "training.nesterov=true",
        ],
        ["training.optimizer=adam", "training.lr=0.01", "training.weight_decay=0.01"],
        ["training.optimizer=sgd", "training.lr=0.5", "training.momentum=0.9", "training.amp=bf16"],
    ],
    ids=["sgd-momentum-wd", "nesterov", "adam", "bf16-autocast"],
)
def test_pruned_weights_are_exactly_zero_after_50_steps(tmp_path, overrides):
    training = load(
        None, ["training.duration=50it", "training.eval_every=25it", *overrides]
    ).training
    torch.manual_seed(0)
    model = models.build("conv2", num_classes=10, in_channels=1, image_size=8)
    mask = half_mask(model)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_run(model, data(), training, Session(), run_dir=tmp_path, mask=mask)
    parameters = dict(model.named_parameters())
    for name, keep in mask.items():
        assert torch.count_nonzero(parameters[name][~keep]) == 0, name
        assert not torch.equal(parameters[name][keep], start[name][keep])  # survivors trained


def test_without_the_mask_the_same_training_moves_those_weights(tmp_path):
    """The check above has teeth: unmasked, momentum and decay move every weight."""
    training = load(
        None, ["training.duration=50it", "training.momentum=0.9", "training.weight_decay=0.01"]
    ).training
    torch.manual_seed(0)
    model = models.build("conv2", num_classes=10, in_channels=1, image_size=8)
    mask = half_mask(model)
    with torch.no_grad():
        for name, keep in mask.items():
            dict(model.named_parameters())[name][~keep] = 0.0
    train_run(model, data(), training, Session(), run_dir=tmp_path)
    parameters = dict(model.named_parameters())
    assert all(torch.count_nonzero(parameters[n][~keep]) > 0 for n, keep in mask.items())
