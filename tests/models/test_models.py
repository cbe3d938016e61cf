"""Architectures: registry, weight counts against the papers, output shapes, options."""

import pytest
import torch
from torch import nn

from scale_lth import models

ALL = ["conv2", "conv4", "conv6", "lenet300", "resnet18", "resnet20", "resnet50", "vgg19"]


def weight_counts(model: nn.Module, layer_type: type[nn.Module]) -> dict[str, int]:
    """Weight count of every ``layer_type`` layer, keyed by its weight's parameter name."""
    return {
        f"{name}.weight": layer.weight.numel()
        for name, layer in model.named_modules()
        if isinstance(layer, layer_type)
    }


def test_names_lists_every_model_sorted():
    assert models.names() == ALL


def test_unknown_name_raises_and_lists_the_known_ones():
    with pytest.raises(ValueError, match="resnet34") as error:
        models.build("resnet34")
    assert all(name in str(error.value) for name in ALL)


def test_unknown_option_raises_naming_it_and_the_accepted_ones():
    with pytest.raises(TypeError, match="dropuot") as error:
        models.build("conv2", dropuot=0.5)
    assert "dropout, image_size, in_channels" in str(error.value)
    with pytest.raises(TypeError, match="accepts: none"):
        models.build("resnet50", dropout=0.5)
    with pytest.raises(TypeError, match="dropout"):
        models.build("lenet300", dropout=0.5)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("lenet300", ["input_size"]),
        ("conv4", ["dropout", "image_size", "in_channels"]),
        ("resnet20", ["image_size", "in_channels"]),
        ("vgg19", ["image_size", "in_channels"]),
        ("resnet18", []),
    ],
)
def test_options(name, expected):
    assert models.options(name) == expected


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("conv2", {"num_classes": 0}),
        ("conv2", {"num_classes": 2.5}),
        ("conv2", {"dropout": 1.0}),
        ("conv6", {"image_size": 4}),
        ("vgg19", {"image_size": 8}),
        ("resnet20", {"image_size": 0}),
        ("lenet300", {"input_size": 0}),
    ],
)
def test_invalid_option_values_raise(name, options):
    with pytest.raises(ValueError):
        models.build(name, **options)


def test_each_build_is_freshly_initialised():
    first, second = models.build("lenet300"), models.build("lenet300")
    assert not torch.equal(first.output.weight, second.output.weight)


# name: (all conv + linear weights, conv weights)
TOTALS = {
    "lenet300": (266_200, 0),
    "conv2": (4_300_992, 38_592),
    "conv4": (2_425_024, 259_776),
    "conv6": (2_261_184, 1_144_512),
    "resnet20": (267_696 + 2_560 + 640, 267_696 + 2_560),
    "vgg19": (20_018_880 + 5_120, 20_018_880),
    "resnet18": (11_678_912, 11_678_912 - 512 * 1000),
    "resnet50": (25_502_912, 25_502_912 - 2048 * 1000),
}


@pytest.mark.parametrize("name", ALL)
def test_weight_counts_match_the_papers(built, name):
    model = built(name)
    conv = sum(weight_counts(model, nn.Conv2d).values())
    linear = sum(weight_counts(model, nn.Linear).values())
    assert (conv + linear, conv) == TOTALS[name]


def test_lenet300_layers():
    model = models.build("lenet300")
    assert list(weight_counts(model, nn.Linear).values()) == [784 * 300, 300 * 100, 100 * 10]


def test_lenet300_on_digits_takes_64_inputs():
    model = models.build("lenet300", input_size=64)
    assert sum(weight_counts(model, nn.Linear).values()) == 64 * 300 + 300 * 100 + 100 * 10


@pytest.mark.parametrize(
    ("name", "conv_widths"),
    [
        ("conv2", [64, 64]),
        ("conv4", [64, 64, 128, 128]),
        ("conv6", [64, 64, 128, 128, 256, 256]),
    ],
)
def test_conv_nets_layers(built, name, conv_widths):
    model = built(name)
    convs = [layer for layer in model.modules() if isinstance(layer, nn.Conv2d)]
    assert [conv.out_channels for conv in convs] == conv_widths
    assert all(conv.kernel_size == (3, 3) and conv.padding == (1, 1) for conv in convs)
    linears = [layer for layer in model.modules() if isinstance(layer, nn.Linear)]
    pooled_side = 32 // 2 ** (len(conv_widths) // 2)
    assert linears[0].in_features == conv_widths[-1] * pooled_side**2
    assert [linear.out_features for linear in linears] == [256, 256, 10]


def test_resnet20_breakdown(built):
    convs = weight_counts(built("resnet20"), nn.Conv2d)
    layers = dict(built("resnet20").named_modules())
    by_kernel: dict[tuple[int, int], int] = {}
    for name, count in convs.items():
        kernel = layers[name.removesuffix(".weight")].kernel_size
        by_kernel[kernel] = by_kernel.get(kernel, 0) + count
    assert by_kernel == {(3, 3): 267_696, (1, 1): 2_560}
    assert len(convs) == 19 + 2
    assert sum(weight_counts(built("resnet20"), nn.Linear).values()) == 640


def test_resnet20_downsamples_twice_with_1x1_shortcuts(built):
    shortcuts = [
        layer
        for layer in built("resnet20").modules()
        if isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1)
    ]
    assert [(conv.in_channels, conv.out_channels, conv.stride) for conv in shortcuts] == [
        (16, 32, (2, 2)),
        (32, 64, (2, 2)),
    ]


def test_vgg19_breakdown(built):
    convs = list(weight_counts(built("vgg19"), nn.Conv2d).values())
    assert len(convs) == 16
    assert convs[:2] == [1_728, 36_864]
    assert convs[-1] == 2_359_296
    assert sum(weight_counts(built("vgg19"), nn.Linear).values()) == 5_120
    batch_norms = [layer for layer in built("vgg19").modules() if isinstance(layer, nn.BatchNorm2d)]
    assert len(batch_norms) == 16


@pytest.mark.parametrize(
    ("name", "input_shape", "output_shape"),
    [
        ("lenet300", (2, 1, 28, 28), (2, 10)),
        ("conv2", (2, 3, 32, 32), (2, 10)),
        ("conv4", (2, 3, 32, 32), (2, 10)),
        ("conv6", (2, 3, 32, 32), (2, 10)),
        ("resnet20", (2, 3, 32, 32), (2, 10)),
        ("vgg19", (2, 3, 32, 32), (2, 10)),
        ("resnet18", (2, 3, 64, 64), (2, 1000)),
        ("resnet50", (2, 3, 64, 64), (2, 1000)),
    ],
)
def test_forward_output_shape(built, name, input_shape, output_shape):
    with torch.no_grad():
        assert built(name)(torch.randn(input_shape)).shape == output_shape


@pytest.mark.parametrize(
    ("name", "options", "input_shape"),
    [
        ("lenet300", {"input_size": 64}, (2, 8, 8)),
        ("conv2", {"in_channels": 1, "image_size": 28}, (2, 1, 28, 28)),
        ("conv6", {"image_size": 64}, (2, 3, 64, 64)),
        ("resnet20", {"in_channels": 1}, (2, 1, 28, 28)),
        ("vgg19", {"in_channels": 1, "image_size": 16}, (2, 1, 16, 16)),
        ("resnet18", {}, (2, 3, 64, 64)),
    ],
)
def test_options_and_num_classes_shape_the_network(name, options, input_shape):
    model = models.build(name, num_classes=7, **options).eval()
    with torch.no_grad():
        assert model(torch.randn(input_shape)).shape == (2, 7)


@pytest.mark.parametrize("name", ["conv2", "conv4", "conv6"])
def test_dropout_makes_training_outputs_random(name):
    x = torch.randn(2, 3, 32, 32)
    model = models.build(name, dropout=0.5).train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_no_dropout_by_default():
    x = torch.randn(2, 3, 32, 32)
    model = models.build("conv2").train()
    assert torch.equal(model(x), model(x))


def test_dropout_follows_every_hidden_activation_but_not_the_output():
    torch.manual_seed(0)
    model = models.build("conv2", dropout=0.5).train()
    inputs = {}
    for name in ("hidden.1", "output"):
        layer = model.classifier.get_submodule(name)
        layer.register_forward_hook(lambda _, args, __, name=name: inputs.update({name: args[0]}))
    model(torch.randn(64, 3, 32, 32))
    for name, activations in inputs.items():
        zeros = (activations == 0).float().mean().item()
        # Without dropout about half of the ReLU outputs would be zero; with it about 3/4.
        assert zeros > 0.65, name
