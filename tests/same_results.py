"""Two experiments' runs compared: the same masks and final weights, bit for bit."""

import torch

from scale_lth.pruning import Mask
from scale_lth.results import Layout


def assert_same_results(layout: Layout, reference: Layout) -> None:
    """Runs the reference finished too, with bitwise equal masks and final weights."""
    assert set(layout.finished()) <= set(reference.finished())
    for key in layout.finished():
        if key.level > 0:
            assert Mask.load(layout.mask_path(key)) == Mask.load(reference.mask_path(key))
        final, expected = torch.load(layout.final_path(key)), torch.load(reference.final_path(key))
        assert all(torch.equal(final[name], expected[name]) for name in expected), key
