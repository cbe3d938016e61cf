"""Each model's declared prunable weights and output layer, and reading them through wrappers."""

import copy
import pickle

import pytest
import torch
from torch import nn

from scale_lth import models
from scale_lth.models.declarations import declare

ALL = models.names()

# Conv and linear weights that are NOT prunable by default (LTH App. I.3 for resnet20 and vgg19).
NOT_PRUNABLE = {
    "lenet300": set(),
    "conv2": set(),
    "conv4": set(),
    "conv6": set(),
    "resnet20": {"blocks.3.shortcut.0.weight", "blocks.6.shortcut.0.weight", "fc.weight"},
    "vgg19": {"fc.weight"},
    "resnet18": set(),
    "resnet50": set(),
}

PRUNABLE_COUNTS = {
    "lenet300": 266_200,
    "conv2": 4_300_992,
    "conv4": 2_425_024,
    "conv6": 2_261_184,
    "resnet20": 267_696,
    "vgg19": 20_018_880,
    "resnet18": 11_678_912,
    "resnet50": 25_502_912,
}

OUTPUT_LAYERS = {
    "lenet300": "output.weight",
    "conv2": "classifier.output.weight",
    "conv4": "classifier.output.weight",
    "conv6": "classifier.output.weight",
    "resnet20": "fc.weight",
    "vgg19": "fc.weight",
    "resnet18": "fc.weight",
    "resnet50": "fc.weight",
}


class FakeDistributedDataParallel(nn.Module):
    """Holds the model as ``.module``, like DistributedDataParallel."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module


def conv_and_linear_weights(model: nn.Module) -> list[str]:
    return [
        f"{name}.weight"
        for name, layer in model.named_modules()
        if isinstance(layer, (nn.Conv2d, nn.Linear))
    ]


@pytest.mark.parametrize("name", ALL)
def test_prunable_is_every_conv_and_linear_weight_but_the_excluded(built, name):
    model = built(name)
    prunable = models.prunable(model)
    assert len(prunable) == len(set(prunable))
    assert set(conv_and_linear_weights(model)) - set(prunable) == NOT_PRUNABLE[name]
    assert set(prunable) <= set(conv_and_linear_weights(model))


@pytest.mark.parametrize("name", ALL)
def test_prunable_counts(built, name):
    parameters = dict(built(name).named_parameters())
    assert (
        sum(parameters[weight].numel() for weight in models.prunable(built(name)))
        == (PRUNABLE_COUNTS[name])
    )


@pytest.mark.parametrize("name", ALL)
def test_prunable_follows_named_parameters_order(built, name):
    prunable = models.prunable(built(name))
    in_order = [weight for weight, _ in built(name).named_parameters() if weight in prunable]
    assert prunable == in_order


@pytest.mark.parametrize("name", ALL)
def test_output_layer_is_the_classifier_weight(built, name):
    output_layer = models.output_layer(built(name))
    assert output_layer == OUTPUT_LAYERS[name]
    assert output_layer == conv_and_linear_weights(built(name))[-1]
    default_classes = 1000 if name in ("resnet18", "resnet50") else 10
    assert built(name).get_parameter(output_layer).shape[0] == default_classes


def test_prunable_returns_a_copy(built):
    models.prunable(built("lenet300")).clear()
    assert len(models.prunable(built("lenet300"))) == 3


@pytest.mark.parametrize("name", ["resnet20", "conv2"])
def test_declaration_survives_deepcopy_and_pickle(name):
    model = models.build(name)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert models.prunable(clone) == models.prunable(model)
        assert models.output_layer(clone) == models.output_layer(model)
        clone_parameters = dict(clone.named_parameters())
        assert all(weight in clone_parameters for weight in models.prunable(clone))


def test_declaration_survives_state_dict_round_trip():
    source, target = models.build("resnet20"), models.build("resnet20")
    target.load_state_dict(source.state_dict())
    assert models.prunable(target) == models.prunable(source)
    first = models.prunable(target)[0]
    assert torch.equal(target.get_parameter(first), source.get_parameter(first))


def test_reads_through_a_distributed_data_parallel_like_wrapper(built):
    model = built("resnet20")
    wrapped = FakeDistributedDataParallel(model)
    assert models.unwrap(wrapped) is model
    assert models.prunable(wrapped) == models.prunable(model)
    assert models.output_layer(wrapped) == "fc.weight"


def test_reads_through_torch_compile(built):
    model = built("lenet300")
    compiled = torch.compile(model)
    assert models.unwrap(compiled) is model
    assert models.prunable(compiled) == ["hidden.0.weight", "hidden.1.weight", "output.weight"]
    assert models.unwrap(FakeDistributedDataParallel(compiled)) is model


def test_undeclared_model_raises():
    with pytest.raises(TypeError, match="declares no prunable parameters"):
        models.prunable(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="declares no prunable parameters"):
        models.output_layer(FakeDistributedDataParallel(nn.Linear(2, 2)))


def test_declare_rejects_unknown_names_and_orders_the_rest():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    with pytest.raises(ValueError, match="2.weight"):
        declare(model, prunable=["0.weight", "2.weight"], output_layer="1.weight")
    declare(model, prunable=["1.weight", "0.weight"], output_layer="1.weight")
    assert models.prunable(model) == ["0.weight", "1.weight"]
