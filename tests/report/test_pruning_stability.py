"""Stability to pruning against its definition: the L2 distance and angle between a level's
trained weights and its source level's trained weights on the level's mask."""

import math

import pytest
import torch
import yaml

from scale_lth.pruning import Mask
from scale_lth.report.pruning_stability import (
    distance_and_angle,
    pruning_stability_metrics,
    stability_to_pruning,
)
from scale_lth.results import Layout, RunKey
from scale_lth.storage import atomic_torch_save


def test_distance_and_angle_of_known_vectors():
    assert distance_and_angle([torch.tensor([1.0, 0.0])], [torch.tensor([0.0, 1.0])]) == (
        pytest.approx(math.sqrt(2)),
        pytest.approx(90.0),
    )
    # split over tensors as one vector: (3, 4) and (3, 4) -> 0 apart; (1, 1) vs (2, 2) -> 0 deg
    assert distance_and_angle(
        [torch.tensor([3.0]), torch.tensor([4.0])], [torch.tensor([3.0, 4.0])]
    ) == (0.0, 0.0)
    distance, angle = distance_and_angle([torch.tensor([1.0, 1.0])], [torch.tensor([2.0, 2.0])])
    assert distance == pytest.approx(math.sqrt(2)) and angle == pytest.approx(0.0, abs=1e-6)
    assert distance_and_angle([torch.tensor([1.0, 0.0])], [torch.tensor([-1.0, 0.0])])[
        1
    ] == pytest.approx(180.0)


def trained(layout, key, weights, keep=None):
    layout.write_metrics(key, {"final_accuracy": 0.5})
    atomic_torch_save(
        {"w": torch.tensor(weights), "b": torch.tensor([9.0])}, layout.final_path(key)
    )
    if keep is not None:
        Mask({"w": torch.tensor(keep, dtype=torch.bool)}).save(layout.mask_path(key))


@pytest.mark.parametrize("method", ["iterative", "oneshot"])
def test_each_level_is_compared_with_the_level_its_mask_was_cut_from(tmp_path, method):
    layout = Layout(tmp_path)
    layout.config_path.write_text(yaml.safe_dump({"pruning.method": method}))
    trained(layout, RunKey(0, 0), [1.0, 2.0, 3.0, 4.0])
    trained(layout, RunKey(0, 1), [0.0, 2.0, 5.0, 4.0], keep=[0, 1, 1, 1])
    trained(layout, RunKey(0, 2), [0.0, 0.0, 1.0, 1.0], keep=[0, 0, 1, 1])
    found = stability_to_pruning(layout)
    assert [(s.level, s.source) for s in found] == [(1, 0), (2, 0 if method == "oneshot" else 1)]
    # level 1 on its mask: (2, 5, 4) vs (2, 3, 4): distance 2
    assert found[0].distance == pytest.approx(2.0)
    cosine = (4 + 15 + 16) / (math.sqrt(4 + 25 + 16) * math.sqrt(4 + 9 + 16))
    assert found[0].angle == pytest.approx(math.degrees(math.acos(cosine)))
    source = [3.0, 4.0] if method == "oneshot" else [5.0, 4.0]  # the source's weights on the mask
    assert found[1].distance == pytest.approx(math.dist([1.0, 1.0], source))
    assert ("pruning_stability_distance", found[1].distance, 2) in pruning_stability_metrics(found)
