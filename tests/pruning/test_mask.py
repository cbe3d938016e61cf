"""Mask: densities, validation against a model, compact bit-packed files."""

import pytest
import torch

from scale_lth import models
from scale_lth.pruning import Mask, random_prune


def test_density_and_layer_counts():
    mask = Mask(
        {"a": torch.tensor([True, False, True, True]), "b": torch.zeros(2, 2, dtype=torch.bool)}
    )
    assert mask.num_kept == 3 and mask.num_total == 8 and mask.density == 3 / 8
    assert mask.layer_kept() == {"a": 3, "b": 0}
    assert mask.layer_densities() == {"a": 0.75, "b": 0.0}


def test_save_and_load_round_trip_bit_packed(tmp_path):
    model = models.build("lenet300")
    parameters = dict(model.named_parameters())
    dense = Mask.ones_like({n: parameters[n] for n in models.prunable(model)})
    generator = torch.Generator().manual_seed(1)
    mask = Mask({n: torch.rand(t.shape, generator=generator) < 0.3 for n, t in dense.items()})
    path = tmp_path / "mask.pt"
    mask.save(path)
    assert Mask.load(path) == mask
    assert path.stat().st_size < mask.num_total / 8 + 10_000  # one bit per weight, plus headers


def test_validate_names_the_mismatch():
    model = models.build("lenet300")
    parameters = dict(model.named_parameters())
    with pytest.raises(ValueError, match="does not have"):
        Mask({"nope.weight": torch.ones(3, dtype=torch.bool)}).validate(parameters)
    with pytest.raises(ValueError, match="shape"):
        Mask({"output.weight": torch.ones(3, dtype=torch.bool)}).validate(parameters)


def test_random_prune_keeps_per_tensor_counts_and_is_seeded():
    generator = torch.Generator().manual_seed(0)
    like = Mask(
        {
            "a": torch.rand(50, 20, generator=generator) < 0.2,
            "b": torch.rand(30, generator=generator) < 0.7,
        }
    )
    first, second, other = (
        random_prune(like, seed=5),
        random_prune(like, seed=5),
        random_prune(like, seed=6),
    )
    assert first.layer_kept() == like.layer_kept()
    assert first == second and first != other
