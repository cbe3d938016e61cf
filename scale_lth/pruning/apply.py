"""Keeping pruned weights at exactly zero while a masked network trains.

Pruned weights are set to 0.0 after every optimizer step, so every forward pass sees them at
exactly zero whatever momentum, weight decay, Adam's moments, AMP loss scaling or DDP's
gradient averaging did in between. Zeroing their gradients before the step as well would change
no weight: SGD (momentum, Nesterov, weight decay) and Adam update each weight from its own
gradient and state alone (tests/training/test_masked_training.py checks this bit for bit), so
that second pass over the weights, about 1% of a ResNet-18 step on a CPU, is left out. An
optimizer that mixes weights (LARS/LAMB trust ratios, gradient-norm clipping) would need it.
"""

from __future__ import annotations

import torch

from scale_lth.models import unwrap
from scale_lth.pruning.mask import Mask


class MaskedParameters:
    """The model's masked parameters with their masks on the same device, as 0/1 factors."""

    def __init__(self, model: torch.nn.Module, mask: Mask) -> None:
        parameters = dict(unwrap(model).named_parameters())
        mask.validate(parameters)
        self.parameters: list[torch.Tensor] = [parameters[name] for name in mask]
        self.factors = [
            mask[name].to(device=p.device, dtype=p.dtype)
            for name, p in zip(mask, self.parameters, strict=True)
        ]

    @torch.no_grad()
    def zero_weights(self) -> None:
        """Set every pruned weight to 0.0 (call after each optimizer step)."""
        if self.parameters:
            torch._foreach_mul_(self.parameters, self.factors)
