"""SNIP (Lee, Ajanthan & Torr 2019): keep the connections the loss is most sensitive to.

Connection sensitivity (Eq. 6): ``s_j = |g_j| / sum_k |g_k|`` with ``g_j = dL/dc_j`` at
``c = 1``, which by the chain rule is ``w_j * dL/dw_j``. The loss is the mean cross-entropy
over all given minibatches (gradients accumulated), and the top-scoring weights are kept
globally across the scored tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from scale_lth.models import prunable
from scale_lth.pruning.mask import Mask
from scale_lth.pruning.selection import without_smallest

Tensors = torch.Tensor | Sequence[torch.Tensor]


def snip_scores(
    model: torch.nn.Module,
    inputs: Tensors,
    targets: Tensors,
    names: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Normalised connection sensitivity of each weight (all scores sum to 1).

    ``inputs``/``targets`` are one minibatch or equal-length sequences of minibatches;
    ``names`` defaults to the model's prunable weights.
    """
    names = list(names) if names is not None else prunable(model)
    parameters = dict(model.named_parameters())
    batches = list(zip(_minibatches(inputs), _minibatches(targets), strict=True))
    model.zero_grad(set_to_none=True)
    for images, labels in batches:
        (F.cross_entropy(model(images), labels) / len(batches)).backward()
    raw = {name: _sensitivity(name, parameters[name]) for name in names}
    model.zero_grad(set_to_none=True)
    total = sum(score.sum(dtype=torch.float64) for score in raw.values())
    return {name: (score.double() / total).float().cpu() for name, score in raw.items()}


def _minibatches(tensors: Tensors) -> Sequence[torch.Tensor]:
    return [tensors] if isinstance(tensors, torch.Tensor) else tensors


def _sensitivity(name: str, weight: torch.Tensor) -> torch.Tensor:
    """``|w * dL/dw|``, unnormalised."""
    if weight.grad is None:
        raise ValueError(f"{name} got no gradient: the loss does not depend on it")
    return (weight.grad * weight).detach().abs()


def snip_prune(
    model: torch.nn.Module,
    inputs: Tensors,
    targets: Tensors,
    density: float,
    names: Sequence[str] | None = None,
) -> Mask:
    """Keep ``round(density * total)`` weights, those with the highest SNIP scores, globally."""
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must be in [0, 1], got {density}")
    scores = snip_scores(model, inputs, targets, names)
    names = list(scores)
    total = sum(score.numel() for score in scores.values())
    keep = round(density * total)
    survivors = without_smallest([scores[n] for n in names], [None] * len(names), total - keep)
    return Mask(dict(zip(names, survivors, strict=True)))
