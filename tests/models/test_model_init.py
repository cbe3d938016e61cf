"""Initialisation: Gaussian Glorot for the LTH networks, torchvision's own for ImageNet ResNets."""

import math

import pytest
import torch
from torch import nn

LTH_NETWORKS = ["lenet300", "conv2", "conv4", "conv6", "resnet20", "vgg19"]


def fans(weight: torch.Tensor) -> tuple[int, int]:
    receptive_field = weight[0, 0].numel()
    return weight.shape[1] * receptive_field, weight.shape[0] * receptive_field


def glorot_std(weight: torch.Tensor) -> float:
    return math.sqrt(2.0 / sum(fans(weight)))


@pytest.mark.parametrize("name", LTH_NETWORKS)
def test_large_layers_have_glorot_normal_statistics(built, name):
    layers = [
        layer
        for layer in built(name).modules()
        if isinstance(layer, (nn.Conv2d, nn.Linear)) and layer.weight.numel() >= 10_000
    ]
    assert layers
    for layer in layers:
        weight = layer.weight.detach()
        assert weight.std().item() == pytest.approx(glorot_std(weight), rel=0.03)
        assert abs(weight.mean().item()) < 0.05 * glorot_std(weight)


@pytest.mark.parametrize("name", LTH_NETWORKS)
def test_biases_are_zero_and_batch_norm_is_identity(built, name):
    for layer in built(name).modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)) and layer.bias is not None:
            assert torch.count_nonzero(layer.bias) == 0
        if isinstance(layer, nn.BatchNorm2d):
            assert torch.all(layer.weight == 1) and torch.count_nonzero(layer.bias) == 0


def test_networks_without_batch_norm_have_biases(built):
    assert built("conv2").features[0].bias.shape == (64,)
    assert built("lenet300").hidden[0].bias.shape == (300,)


def test_resnet18_keeps_torchvision_init(built):
    model = built("resnet18")
    weight = model.layer4[1].conv2.weight.detach()
    _, fan_out = fans(weight)
    kaiming_fan_out_std = math.sqrt(2.0 / fan_out)
    assert weight.std().item() == pytest.approx(kaiming_fan_out_std, rel=0.03)
    assert weight.std().item() > 1.2 * glorot_std(weight)
    assert torch.count_nonzero(model.fc.bias) > 0
