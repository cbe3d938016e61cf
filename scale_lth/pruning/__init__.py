"""Masks and the ways to choose them: magnitude (global / per layer), random, SNIP."""

from scale_lth.pruning.apply import MaskedParameters
from scale_lth.pruning.magnitude import magnitude_prune, removal_count
from scale_lth.pruning.mask import Mask
from scale_lth.pruning.random import random_prune
from scale_lth.pruning.snip import snip_prune, snip_scores

__all__ = [
    "Mask",
    "MaskedParameters",
    "magnitude_prune",
    "random_prune",
    "removal_count",
    "snip_prune",
    "snip_scores",
]
