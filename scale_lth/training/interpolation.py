"""The straight line between two trained networks, and its error barrier ("Linear Mode
Connectivity and the LTH", Frankle et al. 2020).

Two copies of a network trained from the same weights W_k under different SGD noise end at
W_1 and W_2. Along W(alpha) = alpha W_1 + (1 - alpha) W_2 for evenly spaced alpha in [0, 1]
(the endpoints included), each point's classification error is measured on a split; the
instability is the largest error on the path minus the mean of the two endpoints' errors. An
instability near zero (the paper's threshold: 2%) says the two copies ended in one linearly
connected valley: the network was stable to SGD noise from W_k.

Every floating-point entry of the state is interpolated, BatchNorm's running mean and variance
included (as the paper does: the interpolated network keeps interpolated statistics, not ones
re-estimated on training data); integer entries (BatchNorm's batch counters) are the first
network's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from scale_lth.training.evaluation import evaluate

State = Mapping[str, torch.Tensor]
CPU = torch.device("cpu")


def interpolate(first: State, second: State, alpha: float) -> dict[str, torch.Tensor]:
    """``alpha * first + (1 - alpha) * second``, entry by entry."""
    if set(first) != set(second):
        raise ValueError("the two networks' states name different tensors")
    return {
        name: alpha * tensor + (1 - alpha) * second[name]
        if tensor.is_floating_point()
        else tensor.clone()
        for name, tensor in first.items()
    }


def path_points(count: int) -> list[float]:
    """``count`` evenly spaced alphas from 0 to 1, both included."""
    if count < 2:
        raise ValueError(f"a path needs at least its 2 endpoints, got {count} points")
    return [index / (count - 1) for index in range(count)]


def path_errors(
    model: torch.nn.Module,
    first: State,
    second: State,
    splits: Mapping[str, Iterable],
    points: int,
    device: torch.device = CPU,
    distributed: bool = False,
) -> dict[str, list[float]]:
    """Each split's classification error at every point of the path, in alpha order (so the
    first entry is ``second``'s error and the last ``first``'s); ``model`` is loaded with each
    point in turn. With ``distributed`` each split is this rank's shard (see ``evaluate``)."""
    errors: dict[str, list[float]] = {split: [] for split in splits}
    for alpha in path_points(points):
        model.load_state_dict(interpolate(first, second, alpha))
        for split, batches in splits.items():
            measured = evaluate(model, batches, device, distributed=distributed)
            errors[split].append(1.0 - measured["accuracy"])
    return errors


def instability(errors: list[float]) -> float:
    """The error barrier: the largest error on the path minus the endpoints' mean error."""
    return max(errors) - (errors[0] + errors[-1]) / 2
