"""Keeping pruned weights at exactly zero while a masked network trains.

Gradients of pruned weights are zeroed before each optimizer step and the weights themselves
after it, so neither momentum, weight decay, Adam's moments, AMP loss scaling nor DDP's
gradient averaging can move a pruned weight away from 0.0.
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
        self.parameters = [parameters[name] for name in mask]
        self.factors = [
            mask[name].to(device=p.device, dtype=p.dtype)
            for name, p in zip(mask, self.parameters, strict=True)
        ]

    @torch.no_grad()
    def zero_weights(self) -> None:
        """Set every pruned weight to 0.0 (call after each optimizer step)."""
        if self.parameters:
            torch._foreach_mul_(self.parameters, self.factors)

    @torch.no_grad()
    def zero_gradients(self) -> None:
        """Zero the gradients of pruned weights (call before each optimizer step)."""
        pairs = [
            (p.grad, f)
            for p, f in zip(self.parameters, self.factors, strict=True)
            if p.grad is not None
        ]
        if pairs:
            grads, factors = zip(*pairs, strict=True)
            torch._foreach_mul_(list(grads), list(factors))
