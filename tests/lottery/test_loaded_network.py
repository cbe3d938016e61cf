"""A network given its weights is built empty and loaded (scale_lth.lottery.network
.loaded_network): it holds exactly those weights, in memory of its own, and computes what the
network built and initialised the usual way computes with them."""

import pytest
import torch

from scale_lth import models
from scale_lth.config import load
from scale_lth.data import DataInfo
from scale_lth.lottery.network import build_network, loaded_network
from tests.conftest import CONFIGS

INFO = DataInfo(
    source="test", layout="rgb", num_classes=10, shape=[3, 32, 32], splits={},
    mean=[0.0] * 3, std=[1.0] * 3, augmentation="none",
)  # fmt: skip


@pytest.mark.parametrize("name", models.names())
def test_a_loaded_network_holds_its_weights_and_computes_as_a_built_one(name):
    config = load(CONFIGS / "smoke.yaml", [f"model.name={name}"])
    built = build_network(config, INFO, seed=3).eval()
    weights = {key: value.clone() for key, value in built.state_dict().items()}
    loaded = loaded_network(config, INFO, weights).eval()
    state = loaded.state_dict()
    assert state.keys() == weights.keys()
    assert all(torch.equal(state[key], weights[key]) for key in weights)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(images), built(images))
        first, parameter = next(iter(loaded.named_parameters()))
        parameter.add_(1.0)  # its own memory: the weights it was given stay as they were
    assert torch.equal(weights[first], built.state_dict()[first])
