"""What runs start from: the init and rewind weights, trained weights, and the masks, each
chosen once (by rank 0, read back by every rank) and kept on disk.

The ticket of level l prunes the weights of its source level with the level l-1 mask as the
starting point: with ``pruning.method: iterative`` the source is level l-1 (IMP), with
``oneshot`` it is level 0 for every level. Magnitude pruning removes the smallest weights with
fixed tie-breaks, so pruning level 0's weights l times by ``p`` removes exactly the weights a
single cut to (1-p)^l removes: one-shot masks of growing sparsity are nested and need nothing
but level 0's training.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from scale_lth.config import Config
from scale_lth.console import say
from scale_lth.data import DataInfo
from scale_lth.lottery.graph import Reads
from scale_lth.lottery.instability import choose_rewind
from scale_lth.lottery.network import (
    build_network,
    group_rates,
    layer_rates,
    loaded_network,
    pruned_groups,
    pruned_names,
)
from scale_lth.lottery.pruning import prune_level
from scale_lth.lottery.steps import Steps
from scale_lth.pruning import Mask
from scale_lth.pruning.channel_groups import ChannelGroup
from scale_lth.pruning.channels import (
    channel_mask,
    channel_scores,
    kept_channels,
    remove_channels,
)
from scale_lth.results import PATH, InstabilityRun, Layout, RunKey, instability_branch
from scale_lth.storage import atomic_torch_save, atomic_write_json, load_json, load_torch
from scale_lth.training.session import Session


class StartStore:
    def __init__(self, config: Config, info: DataInfo, session: Session) -> None:
        self.config = config
        self.info = info
        self.session = session
        self.layout = Layout(config.experiment_dir)
        self.reads = Reads.of(config)
        self.probe = self.network()

    # ----- seeds and networks -------------------------------------------------------------
    def replicate_seed(self, replicate: int) -> int:
        return self.config.seed + replicate

    def data_seed(self, key: RunKey) -> int:
        """The seed of a run's data order: its replicate's, but a copy of the instability
        analysis has one of its own (its SGD noise)."""
        if not isinstance(key.kind, InstabilityRun):
            return self.replicate_seed(key.replicate)
        return self.derived_seed(key, "/data")

    def derived_seed(self, key: RunKey, purpose: str = "") -> int:
        """A seed of its own for each (replicate, level, branch) and purpose."""
        text = f"{self.replicate_seed(key.replicate)}/{key.level}/{key.branch}{purpose}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")

    def network(self, weights: dict[str, torch.Tensor] | None = None, seed: int = 0) -> nn.Module:
        """The config's network holding ``weights``, or else initialised from ``seed``."""
        if weights is None:
            return build_network(self.config, self.info, seed)
        return loaded_network(self.config, self.info, weights)

    def fresh_weights(self, seed: int) -> dict[str, torch.Tensor]:
        return self.network(seed=seed).state_dict()

    # ----- weights saved by earlier runs --------------------------------------------------
    def init_weights(self, replicate: int) -> dict[str, torch.Tensor]:
        return load_torch(self.layout.init_path(replicate))

    def rewind_point(self, replicate: int) -> tuple[dict[str, torch.Tensor], int]:
        """The weights at the rewind step k, and k: the config's, or with ``auto`` the one
        chosen from level 0's instability at each candidate."""
        if self.config.rewinding.step == "auto":
            step = self.rewind_choice(replicate)["step"]
            return self.point_weights(replicate, step), step
        saved = load_torch(self.layout.rewind_path(replicate))
        return saved["model"], saved["step"]

    def point_weights(self, replicate: int, step: int) -> dict[str, torch.Tensor]:
        """The dense run's weights at ``step`` (saved where copies start)."""
        return load_torch(self.layout.point_path(replicate, step))

    def rewind_choice(self, replicate: int) -> dict:
        """``rewinding.step: auto``'s choice for ``replicate``, made once from the finished path
        measurements at every candidate and kept on disk (``rewind_choice.json``)."""
        path = self.layout.rewind_choice_path(replicate)
        if not path.is_file():
            measured = [
                self.layout.read_metrics(
                    RunKey(replicate, 0, instability_branch(PATH, str(candidate)))
                )
                for candidate in self.config.rewinding.candidates
            ]
            choice = choose_rewind(measured, self.config.instability.threshold)
            atomic_write_json(path, choice)  # the same content whichever worker writes it
        return load_json(path)

    def trained_weights(self, key: RunKey) -> dict[str, torch.Tensor]:
        """The trunk's final weights at the source level of ``key.level``."""
        return load_torch(self.layout.final_path(self.reads.source(key)))

    def save_points(self, key: RunKey, steps: Steps) -> dict[int, Callable[[nn.Module, int], None]]:
        """Level 0's ticket saves its weights at step 0 (init), at the rewind step k and at
        every step instability copies start from."""
        if key != RunKey(key.replicate, 0):
            return {}

        def save(model: nn.Module, step: int) -> None:
            weights = {name: t.detach().cpu() for name, t in model.state_dict().items()}
            atomic_torch_save(weights, self.layout.point_path(key.replicate, step))
            if step == steps.rewind:
                record = {"model": weights, "step": step}
                atomic_torch_save(record, self.layout.rewind_path(key.replicate))

        return dict.fromkeys(steps.saved, save)

    # ----- masks --------------------------------------------------------------------------
    def shared_mask(self, key: RunKey, choose: Callable[[], Mask]) -> Mask:
        """The run's mask: chosen by rank 0 the first time, read from disk by every rank."""
        path = self.layout.mask_path(key)
        if self.session.is_chief and not path.is_file():
            say(f"[{key}] choosing the mask")
            choose().save(path)
        self.session.barrier()
        return Mask.load(path)

    def ticket_mask(self, key: RunKey) -> Mask:
        """The winning ticket's mask at ``key.level`` (>= 1): each level's cut from the one
        before, level after level (no recursion: any number of levels). Every rank takes part
        in each level's ``shared_mask`` (it holds a barrier); only rank 0 cuts."""
        if key.level < 1:
            raise ValueError(f"{key}: the dense level has no mask")
        first = RunKey(key.replicate, 1)
        mask = self.shared_mask(first, partial(self._cut, first, None))
        for level in range(2, key.level + 1):
            ticket = RunKey(key.replicate, level)
            mask = self.shared_mask(ticket, partial(self._cut, ticket, mask))
        return mask

    def _cut(self, ticket: RunKey, previous: Mask | None) -> Mask:
        """Level ``ticket.level``'s mask, pruned from its source level's trained weights."""
        weights = self.trained_weights(ticket)
        names = pruned_names(self.config, self.probe)
        broken = [name for name in names if not torch.isfinite(weights[name]).all()]
        if broken:
            source = self.layout.final_path(self.reads.source(ticket))
            raise ValueError(
                f"{source} holds NaN or infinite weights ({', '.join(broken[:3])}): that run "
                "diverged; lower training.lr or lengthen training.warmup, then delete that "
                "run's folder to train it again"
            )
        if self.config.pruning.granularity == "channel":
            return self._cut_channels(weights, previous)
        rates = layer_rates(self.config, self.probe)
        return prune_level(weights, names, rates, self.config.pruning.fraction, previous)

    def _cut_channels(self, weights: dict[str, torch.Tensor], previous: Mask | None) -> Mask:
        """A level's channel mask: the lowest-scoring channels of the source level's weights
        removed from those ``previous`` keeps."""
        groups = pruned_groups(self.config, self.probe)
        alive = (
            kept_channels(previous, groups)
            if previous is not None
            else [torch.ones(group.channels, dtype=torch.bool) for group in groups]
        )
        pruning = self.config.pruning
        scores = channel_scores(weights, groups, pruning.channel_score)
        kept = remove_channels(scores, alive, pruning.fraction, group_rates(self.config, groups))
        return self.channel_mask(groups, kept)

    def channel_mask(self, groups: list[ChannelGroup], kept: list[torch.Tensor]) -> Mask:
        """The weight mask of the network's channels ``kept`` (per group)."""
        shapes = {name: parameter.shape for name, parameter in self.probe.named_parameters()}
        return channel_mask(shapes, groups, kept)
