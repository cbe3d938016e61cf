"""One optimizer step of a run: the network on its device (DDP across ranks), its optimizer,
learning-rate schedule and grad scaler, and the mask that keeps pruned weights at exactly zero
after every step (see scale_lth.pruning.apply)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from scale_lth.config.schema import TrainingConfig
from scale_lth.pruning import Mask, MaskedParameters
from scale_lth.training.evaluation import autocast
from scale_lth.training.optim import build_optimizer, build_scheduler
from scale_lth.training.schedule import Schedule
from scale_lth.training.session import Session
from scale_lth.training.state import TrainingState


class TrainStep:
    """Built on a model already on its device and holding the weights the run starts (or
    resumes) from; ``state``, a checkpoint's, restores the optimizer, schedule and scaler."""

    def __init__(
        self,
        model: torch.nn.Module,
        mask: Mask | None,
        training: TrainingConfig,
        session: Session,
        schedule: Schedule,
        start_step: int,
        state: TrainingState | None,
    ) -> None:
        self.model = model
        self.training = training
        self.device = session.device
        self.masked = MaskedParameters(model, mask) if mask is not None else None
        if self.masked is not None:
            self.masked.zero_weights()
        self.network: torch.nn.Module = model
        if session.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = DistributedDataParallel(model, device_ids=device_ids)
        self.optimizer = build_optimizer(model, training)
        self.scheduler = build_scheduler(self.optimizer, schedule, start_step)
        fp16 = training.amp == "fp16"
        self.scaler = torch.amp.GradScaler(self.device.type) if fp16 else None
        if state is not None:
            self.optimizer.load_state_dict(state.optimizer)
            self.scheduler.load_state_dict(state.scheduler)
            if self.scaler is not None and state.scaler is not None:
                self.scaler.load_state_dict(state.scaler)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One step on a batch; returns its loss (on the device)."""
        with autocast(self.device, self.training.amp):
            logits = self.network(images)
        loss = F.cross_entropy(
            logits.float(), labels, label_smoothing=self.training.label_smoothing
        )
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        if self.masked is not None:
            self.masked.zero_weights()
        self.scheduler.step()
        return loss

    @property
    def lr(self) -> float:
        """The rate the last step used (the schedule's current one before any step)."""
        return float(self.scheduler.get_last_lr()[0])  # torch allows a tensor rate; ours are floats

    def states(self) -> dict:
        """The optimizer's, schedule's and scaler's states, for a checkpoint."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
        }
