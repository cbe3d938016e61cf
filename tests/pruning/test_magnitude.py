"""Magnitude pruning: exact counts, torch.nn.utils.prune agreement, per-layer rates."""

import math

import pytest
import torch
from torch.nn.utils import prune

from scale_lth import models
from scale_lth.pruning import Mask, magnitude_prune, removal_count


def random_network(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = models.build(name)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_()  # continuous values: no magnitude ties
    return model


def prunable_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    parameters = dict(model.named_parameters())
    return {name: parameters[name].detach() for name in models.prunable(model)}


def torch_prune_masks(model, weights, counts):
    """torch.nn.utils.prune.global_unstructured over the same tensors, level after level."""
    modules = dict(model.named_modules())
    targets = [(modules[name.removesuffix(".weight")], "weight") for name in weights]
    masks = []
    for count in counts:
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=count)
        masks.append(
            {
                name: module.weight_mask.bool().clone()
                for name, (module, _) in zip(weights, targets, strict=True)
            }
        )
    return masks


@pytest.mark.parametrize(
    ("name", "fractions"), [("resnet18", [0.2, 0.5, 0.9]), ("resnet50", [0.2])]
)
def test_global_masks_equal_torch_global_unstructured_level_after_level(name, fractions):
    model = random_network(name)
    weights = prunable_weights(model)
    for fraction in fractions:
        ours, counts = [], []
        mask = Mask.ones_like(weights)
        for _level in range(3):
            remaining = mask.num_kept
            mask = magnitude_prune(weights, fraction, mask)
            counts.append(math.ceil(fraction * remaining))
            assert remaining - mask.num_kept == counts[-1]
            ours.append(mask)
        reference = torch_prune_masks(random_network(name), weights, counts)
        for level, (mine, theirs) in enumerate(zip(ours, reference, strict=True)):
            assert all(torch.equal(mine[n], theirs[n]) for n in weights), (fraction, level)


def test_each_level_removes_exactly_ceil_of_the_remaining_even_with_ties():
    weights = {
        "a": torch.tensor([1.0, 1.0, 1.0, 2.0, 0.5, 1.0]),
        "b": torch.ones(7),
        "c": torch.zeros(3, 3),
    }
    mask = Mask.ones_like(weights)
    for _ in range(6):
        remaining = mask.num_kept
        mask = magnitude_prune(weights, 0.3, mask)
        assert (
            remaining - mask.num_kept == removal_count(0.3, remaining) == math.ceil(0.3 * remaining)
        )
    again = Mask.ones_like(weights)
    for _ in range(6):
        again = magnitude_prune(weights, 0.3, again)
    assert again == mask  # ties are broken the same way every time


def test_ties_go_to_the_earlier_tensor_then_the_lower_index():
    weights = {"a": torch.tensor([3.0, 1.0, 1.0]), "b": torch.tensor([1.0, 1.0])}
    mask = magnitude_prune(weights, 0.4, Mask.ones_like(weights))  # removes 2 of 5
    assert mask["a"].tolist() == [True, False, False] and mask["b"].tolist() == [True, True]


def test_pruned_weights_are_never_revived():
    weights = {"w": torch.tensor([5.0, 0.1, 0.2, 3.0, 4.0])}
    start = Mask({"w": torch.tensor([False, True, True, True, True])})  # the largest is pruned
    mask = magnitude_prune(weights, 0.5, start)
    assert mask["w"].tolist() == [False, False, False, True, True]


def per_tensor_reference(weights, rates, mask):
    """Sort each tensor's surviving magnitudes; remove ceil(rate * survivors) smallest."""
    result = {}
    for name, tensor in weights.items():
        flat = tensor.abs().flatten()
        alive = mask[name].flatten()
        order = sorted((float(flat[i]), i) for i in range(flat.numel()) if alive[i])
        count = math.ceil(rates[name] * len(order))
        keep = alive.clone()
        for _, index in order[:count]:
            keep[index] = False
        result[name] = keep.view(tensor.shape)
    return result


def test_layer_wise_per_layer_rates_match_a_per_tensor_reference():
    torch.manual_seed(1)
    weights = {
        "hidden": torch.randn(30, 20),
        "more": torch.randn(40),
        "output": torch.randn(10, 30),
    }
    rates = {"hidden": 0.2, "more": 0.35, "output": 0.1}
    mask = Mask.ones_like(weights)
    reference = dict(mask)
    for _ in range(4):
        mask = magnitude_prune(weights, rates, mask)
        reference = per_tensor_reference(weights, rates, reference)
        assert all(torch.equal(mask[n], reference[n]) for n in weights)
    uniform = magnitude_prune(weights, 0.2, scope="layer")
    assert uniform.layer_kept() == {
        n: t.numel() - math.ceil(0.2 * t.numel()) for n, t in weights.items()
    }


def test_bad_arguments_are_rejected():
    weights = {"w": torch.ones(4)}
    with pytest.raises(ValueError, match="fraction"):
        magnitude_prune(weights, 1.5)
    with pytest.raises(ValueError, match="no pruning fraction"):
        magnitude_prune({"w": torch.ones(4), "v": torch.ones(2)}, {"w": 0.1})
    with pytest.raises(ValueError, match="scope"):
        magnitude_prune(weights, 0.1, scope="network")
