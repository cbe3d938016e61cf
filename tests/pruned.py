"""A lottery's trained networks keep their masks: every pruned weight exactly zero."""

import torch

from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey


def assert_pruned_weights_zero(layout: Layout) -> None:
    """Each finished run past level 0 ends with its mask's pruned weights exactly zero (the
    ticket's mask for the ticket, reinit and Scratch-B; their own for random pruning and SNIP)
    and some kept weight of each layer not zero."""
    for key in layout.finished():
        if key.level == 0:
            continue
        mask_key = key if key.branch in ("random_prune", "snip") else RunKey(0, key.level)
        mask = Mask.load(layout.mask_path(mask_key))
        final = torch.load(layout.final_path(key))
        for name, keep in mask.items():
            assert torch.count_nonzero(final[name][~keep]) == 0, (key, name)
            assert torch.count_nonzero(final[name][keep]) > 0, (key, name)
