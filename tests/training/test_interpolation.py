"""The linear path between two networks and its error barrier, against a hand-built pair whose
error along the path is known, and against the endpoints' own errors."""

import pytest
import torch
from torch import nn

from scale_lth.models.cifar_resnet import resnet20
from scale_lth.training.evaluation import evaluate
from scale_lth.training.interpolation import instability, interpolate, path_errors, path_points

# x = +1 is class 0, x = -1 class 1
BATCHES = [(torch.tensor([[1.0], [-1.0]]), torch.tensor([0, 1]))]


def network() -> nn.Module:
    return nn.Sequential(nn.Linear(1, 2, bias=False), nn.ReLU(), nn.Linear(2, 2))


def pair() -> tuple[dict, dict]:
    """One function twice, its two hidden units swapped: h = (relu(x), relu(-x)), logits = h,
    plus an output bias of 0.01 on class 0 that breaks the midpoint's tie. At alpha both hidden
    units read (2 alpha - 1) x and -(2 alpha - 1) x, so at alpha = 1/2 they are 0, the logits
    are the bias, and x = -1 is called class 0: half the points wrong. Away from 1/2 the
    margin |2 alpha - 1| alpha-weighted beats the bias (at 1/4 and 3/4: 0.25 > 0.01)."""
    bias = torch.tensor([0.01, 0.0])
    first = {"0.weight": torch.tensor([[1.0], [-1.0]]), "2.weight": torch.eye(2), "2.bias": bias}
    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    second = {"0.weight": swap @ first["0.weight"], "2.weight": swap, "2.bias": bias}
    return first, second


def test_a_known_barrier_is_measured():
    first, second = pair()
    errors = path_errors(network(), first, second, {"test": BATCHES}, points=5)
    assert path_points(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert errors == {"test": [0.0, 0.0, 0.5, 0.0, 0.0]}
    assert instability(errors["test"]) == 0.5


def test_the_endpoints_are_the_two_networks_own_errors():
    torch.manual_seed(0)
    first, second = network().state_dict(), network().state_dict()
    data = [(torch.randn(64, 1), torch.randint(0, 2, (64,)))]
    errors = path_errors(network(), first, second, {"train": data}, points=4)["train"]
    for state, error in ((second, errors[0]), (first, errors[-1])):
        model = network()
        model.load_state_dict(state)
        assert error == 1 - evaluate(model, data, torch.device("cpu"))["accuracy"]
    assert instability([0.1, 0.3, 0.2, 0.1]) == pytest.approx(0.2)
    assert instability([0.3, 0.2, 0.1]) == pytest.approx(0.1)  # never below 0: max >= the ends


def test_batchnorm_statistics_are_interpolated_and_counters_kept():
    torch.manual_seed(0)
    first, second = resnet20().state_dict(), resnet20().state_dict()
    for state, shift in ((first, 1.0), (second, 3.0)):
        for name, tensor in state.items():
            if name.endswith(("running_mean", "running_var")):
                tensor.fill_(shift)
            if name.endswith("num_batches_tracked"):
                tensor.fill_(int(shift))
    middle = interpolate(first, second, 0.25)
    for name, tensor in middle.items():
        if name.endswith(("running_mean", "running_var")):
            assert torch.equal(tensor, torch.full_like(tensor, 0.25 * 1.0 + 0.75 * 3.0))
        elif name.endswith("num_batches_tracked"):
            assert tensor.item() == 1  # the first network's
        else:
            assert torch.allclose(tensor, 0.25 * first[name] + 0.75 * second[name])
