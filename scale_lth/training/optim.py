"""Optimizers and learning-rate schedulers built from the training config."""

from __future__ import annotations

import torch

from scale_lth.config.schema import TrainingConfig
from scale_lth.training.schedule import Schedule


def build_optimizer(model: torch.nn.Module, training: TrainingConfig) -> torch.optim.Optimizer:
    """Adam or SGD with torch's fused kernels (one kernel per parameter, CPU and GPU)."""
    parameters = model.parameters()
    if training.optimizer == "adam":
        return torch.optim.Adam(
            parameters, lr=training.lr, weight_decay=training.weight_decay, fused=True
        )
    return torch.optim.SGD(
        parameters,
        lr=training.lr,
        momentum=training.momentum,
        nesterov=training.nesterov,
        weight_decay=training.weight_decay,
        fused=True,
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, schedule: Schedule, start_step: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR positioned at ``start_step``: the next optimizer step uses the rate an
    uninterrupted run uses for its step ``start_step + 1`` (how a rewound level resumes)."""
    factor = schedule.factor()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    if start_step:
        scheduler.last_epoch = start_step
        rates = [base * factor(start_step) for base in scheduler.base_lrs]
        for group, rate in zip(optimizer.param_groups, rates, strict=True):
            group["lr"] = rate
        scheduler._last_lr = rates
    return scheduler
