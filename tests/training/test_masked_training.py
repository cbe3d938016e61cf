"""Pruned weights stay exactly 0.0 through SGD momentum + weight decay, Adam and bf16 autocast."""

import pytest
import torch
import torch.nn.functional as F

from scale_lth import models
from scale_lth.config import load
from scale_lth.pruning import MaskedParameters
from scale_lth.training.evaluation import autocast
from scale_lth.training.loop import train_run
from scale_lth.training.optim import build_optimizer
from scale_lth.training.session import Session
from tests.batches import half_mask, plain_steps, random_data


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
    data = random_data()
    train_run(
        model, data, training, Session(), **plain_steps(training, data), run_dir=tmp_path, mask=mask
    )
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
    data = random_data()
    train_run(model, data, training, Session(), **plain_steps(training, data), run_dir=tmp_path)
    parameters = dict(model.named_parameters())
    assert all(torch.count_nonzero(parameters[n][~keep]) > 0 for n, keep in mask.items())


@pytest.mark.parametrize(
    "overrides",
    [
        ["training.optimizer=sgd", "training.momentum=0.9", "training.weight_decay=0.01"],
        ["training.optimizer=sgd", "training.momentum=0.9", "training.nesterov=true"],
        ["training.optimizer=adam", "training.lr=0.01", "training.weight_decay=0.01"],
        ["training.optimizer=sgd", "training.momentum=0.9", "training.amp=bf16"],
    ],
    ids=["sgd-momentum-wd", "nesterov", "adam", "bf16-autocast"],
)
def test_masking_the_gradients_too_would_change_no_weight(overrides):
    """Why masking the weights after each step suffices: every optimizer here updates each
    weight from its own gradient and state alone, so zeroing pruned gradients before the step
    (as well) leaves every weight bitwise the same, step after step."""
    training = load(None, ["training.lr=0.5", *overrides]).training
    runs = []
    for mask_gradients in (True, False):
        torch.manual_seed(0)
        model = models.build("conv2", num_classes=10, in_channels=1, image_size=8)
        masked = MaskedParameters(model, half_mask(model))
        masked.zero_weights()
        optimizer = build_optimizer(model, training)
        for _ in range(6):
            for images, labels in random_data().train:
                with autocast(torch.device("cpu"), training.amp):
                    loss = F.cross_entropy(model(images).float(), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if mask_gradients:
                    for parameter, factor in zip(masked.parameters, masked.factors, strict=True):
                        parameter.grad.mul_(factor)
                optimizer.step()
                masked.zero_weights()
        runs.append({n: p.detach().clone() for n, p in model.named_parameters()})
    both, weights_only = runs
    assert all(torch.equal(both[name], weights_only[name]) for name in both)
