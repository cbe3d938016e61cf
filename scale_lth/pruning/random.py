"""Random pruning: a random mask with the same surviving count per tensor as a given mask."""

from __future__ import annotations

import torch

from scale_lth.pruning.mask import Mask


def random_prune(like: Mask, seed: int) -> Mask:
    """Each tensor keeps exactly as many weights as in ``like``, at seeded random positions."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, kept in like.items():
        chosen = torch.randperm(kept.numel(), generator=generator)[: int(torch.count_nonzero(kept))]
        fresh = torch.zeros(kept.numel(), dtype=torch.bool)
        fresh[chosen] = True
        tensors[name] = fresh.view(kept.shape)
    return Mask(tensors)
