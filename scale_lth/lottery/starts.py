"""Where a run starts, read from the method registry's words (scale_lth.methods): its weights,
its mask, its first step and its schedule. Every baseline keeps exactly as many weights as its
level's ticket (``random``: per tensor; ``snip``: in total)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import torch

from scale_lth.lottery.graph import start_of_run
from scale_lth.lottery.network import pruned_groups
from scale_lth.lottery.steps import Steps
from scale_lth.lottery.store import StartStore
from scale_lth.models.flops import multiply_accumulates, weight_uses
from scale_lth.pruning import Mask, random_prune, snip_prune, snip_scores
from scale_lth.pruning.channels import kept_channels, random_channels, top_channels
from scale_lth.results import InstabilityRun, RunKey
from scale_lth.training.schedule import Schedule

Minibatches = tuple[list[torch.Tensor], list[torch.Tensor]]  # SNIP's inputs, targets


@dataclass
class RunStart:
    """These weights (pruned ones zeroed by the mask), from this step, on this schedule."""

    weights: dict[str, torch.Tensor]
    mask: Mask | None
    step: int
    schedule: Schedule
    compute_factor: float = 1.0  # the schedule's steps over the dense network's (Scratch-B)


def run_start(
    store: StartStore, key: RunKey, steps: Steps, snip_batches: Callable[[], Minibatches]
) -> RunStart:
    """How the run ``key`` starts; ``snip_batches`` gives SNIP's minibatches (on the device).
    An instability copy starts as its level's runs do: at level 0 from the dense run's weights
    at its step, at level l >= 1 as the level's ticket."""
    start = start_of_run(key, store.config.rewinding.mode)
    if start is None and isinstance(key.kind, InstabilityRun):  # a copy of the dense network
        step = steps.at(key.kind.at)
        return RunStart(store.point_weights(key.replicate, step), None, step, steps.schedule)
    if start is None:  # the dense network, from the replicate's own initialisation
        weights = store.fresh_weights(store.replicate_seed(key.replicate))
        return RunStart(weights, None, 0, steps.schedule)
    mask = _mask(store, key, start.mask, snip_batches)
    rewind = cache(lambda: store.rewind_point(key.replicate))  # read only where it is used
    weights = {
        "fresh": lambda: store.fresh_weights(store.derived_seed(key)),
        "init": lambda: store.init_weights(key.replicate),
        "rewind": lambda: rewind()[0],
        "trained": lambda: store.trained_weights(key),
    }[start.weights]()
    step = rewind()[1] if start.step == "rewind" else 0
    schedule, factor = steps.schedule, 1.0
    if start.schedule == "final_lr":
        schedule = schedule.at_final_rate()
    elif start.schedule == "dense_compute":
        factor = dense_compute_factor(store, mask)
        schedule = schedule.stretched(factor)
    return RunStart(weights, mask, step, schedule, factor)


def _mask(
    store: StartStore, key: RunKey, kind: str, snip_batches: Callable[[], Minibatches]
) -> Mask:
    ticket = store.ticket_mask(key)
    if kind == "ticket":
        return ticket if key.is_ticket else store.shared_mask(key, lambda: ticket)
    channels = store.config.pruning.granularity == "channel"
    groups = pruned_groups(store.config, store.probe) if channels else []
    if kind == "random":

        def random() -> Mask:  # per tensor, or per channel group, the ticket's count
            seed = store.derived_seed(key)
            if not channels:
                return random_prune(ticket, seed=seed)
            return store.channel_mask(groups, random_channels(kept_channels(ticket, groups), seed))

        return store.shared_mask(key, random)
    init = store.init_weights(key.replicate)

    def choose() -> Mask:  # SNIP scores at the init weights, where the minibatches are
        model = store.network(init).to(store.session.device)
        inputs, targets = snip_batches()
        if not channels:
            density = ticket.num_kept / ticket.num_total
            return snip_prune(model, inputs, targets, density=density, names=list(ticket))
        producers = [producer.weight for group in groups for producer in group.producers]
        scores = snip_scores(model, inputs, targets, names=producers)
        per_channel = [  # a channel's sensitivity: the sum over its rows in every producer
            torch.stack([scores[p.weight].flatten(1).sum(dim=1) for p in group.producers]).sum(0)
            for group in groups
        ]
        keep = sum(int(flags.sum()) for flags in kept_channels(ticket, groups))
        return store.channel_mask(groups, top_channels(per_channel, keep))

    return store.shared_mask(key, choose)


def dense_compute_factor(store: StartStore, mask: Mask) -> float:
    """Scratch-B's budget: the dense network's multiply-accumulates over the masked one's,
    capped at ``baselines.scratch_b_max_factor``."""
    info = store.info
    size = store.config.data.resolution or (info.shape[1] if info.shape else 224)
    uses = weight_uses(store.probe, torch.zeros(1, info.channels, size, size))
    dense = multiply_accumulates(store.probe, uses)
    sparse = multiply_accumulates(store.probe, uses, mask.layer_kept())
    return min(dense / sparse, store.config.baselines.scratch_b_max_factor)
