"""The baselines ("branches") trained at every level's sparsity, one function each.

Each returns where its run starts: weights, mask and step. Every baseline keeps exactly as
many weights as its level's ticket (``random_prune``: per tensor; ``snip``: in total).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from scale_lth.pruning import Mask, snip_prune
from scale_lth.pruning import random_prune as random_mask
from scale_lth.results import RunKey

if TYPE_CHECKING:
    from scale_lth.lottery.experiment import Experiment


@dataclass
class Start:
    """Where a run starts: these weights (pruned ones zeroed by the mask), at this step."""

    weights: dict[str, torch.Tensor]
    mask: Mask | None
    step: int


def reinit(experiment: Experiment, key: RunKey) -> Start:
    """The ticket's mask on fresh random weights, trained from step 0 (LTH's random reinit)."""
    ticket = experiment.ticket_mask(key)
    mask = experiment.shared_mask(key, lambda: ticket)  # its own copy, as every run keeps one
    return Start(experiment.fresh_weights(experiment.derived_seed(key)), mask, 0)


def random_prune(experiment: Experiment, key: RunKey) -> Start:
    """A random mask with the ticket's per-tensor counts, on the rewound weights from step k."""
    ticket = experiment.ticket_mask(key)
    mask = experiment.shared_mask(
        key, lambda: random_mask(ticket, seed=experiment.derived_seed(key))
    )
    weights, step = experiment.rewind_point(key.replicate)
    return Start(weights, mask, step)


def snip(experiment: Experiment, key: RunKey) -> Start:
    """SNIP's mask, chosen at the initial weights on minibatches, trained from step 0."""
    init = experiment.init_weights(key.replicate)
    ticket = experiment.ticket_mask(key)

    def choose():
        # scored where the minibatches are (the worker's device)
        model = experiment.network(init).to(experiment.session.device)
        inputs, targets = experiment.snip_batches(key.replicate)
        return snip_prune(
            model, inputs, targets, density=ticket.num_kept / ticket.num_total, names=list(ticket)
        )

    return Start(init, experiment.shared_mask(key, choose), 0)


BRANCHES: dict[str, Callable[[Experiment, RunKey], Start]] = {
    "reinit": reinit,
    "random_prune": random_prune,
    "snip": snip,
}
