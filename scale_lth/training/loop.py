"""One training run on one worker: steps, schedule, masks, evaluation, checkpoints, resumption.

A run starts from the weights its model holds (the caller loads init or rewind weights) at
``start_step``: the learning-rate schedule and the data order continue from there. Pruned
weights are zero before the first step and again after every optimizer step, so every forward
pass sees them at exactly 0.0 (see scale_lth.pruning.apply). Every ``checkpoint_every``
steps a resumable checkpoint is written into the run's folder; a run that finds one there when
it starts (after a failure, a kill or a requeue) continues from it bit for bit.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from scale_lth.config.schema import TrainingConfig
from scale_lth.pruning import Mask, MaskedParameters
from scale_lth.training.heartbeat import Heartbeat
from scale_lth.training.history import History
from scale_lth.training.optim import build_optimizer, build_scheduler
from scale_lth.training.schedule import Schedule
from scale_lth.training.session import Session
from scale_lth.training.state import Checkpoints, TrainingState


@dataclass
class RunData:
    """The loaders a run reads: shuffled training batches and evaluation splits by name."""

    train: Iterable
    evaluation: Mapping[str, Iterable]


@dataclass
class RunResult:
    history: History
    seconds: float  # wall time in training and evaluation steps (across resumptions)
    resumed_from: int | None  # the step a checkpoint brought the run back to, if any


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """bf16/fp16 autocast on the device, or nothing."""
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    batches: Iterable,
    device: torch.device,
    amp: str = "none",
    distributed: bool = False,
) -> dict[str, float]:
    """Mean loss and accuracy over every example; with ``distributed``, ``batches`` is this
    rank's shard and the totals are summed over the process group."""
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    for images, labels in batches:
        with autocast(device, amp):
            logits = model(images)
        totals[0] += F.cross_entropy(logits.float(), labels, reduction="sum")
        totals[1] += (logits.argmax(dim=1) == labels).sum()
        totals[2] += labels.numel()
    if distributed:
        dist.all_reduce(totals)
    model.train(was_training)
    loss, correct, count = totals.tolist()
    return {"loss": loss / count, "accuracy": correct / count}


def train_run(
    model: torch.nn.Module,
    data: RunData,
    training: TrainingConfig,
    session: Session,
    *,
    schedule: Schedule,
    run_dir: Path,
    mask: Mask | None = None,
    start_step: int = 0,
    save_points: Mapping[int, Callable[[torch.nn.Module, int], None]] | None = None,
    eval_every: int = 1,
    checkpoint_every: int = 0,
    on_eval: Callable[[dict[str, float]], None] | None = None,
    heartbeat: Path | None = None,
) -> RunResult:
    """Train ``model`` from ``start_step`` to ``schedule.total`` (plain optimizer steps;
    ``training`` gives the optimizer, precision and loss).

    ``save_points`` maps steps to callbacks ``save(model, step)`` run on rank 0 when the run
    reaches them (the rewind point); ``on_eval`` receives every evaluation row on rank 0,
    measured every ``eval_every`` steps and at the end. ``checkpoint_every`` (steps; 0: never)
    sets how often a resumable checkpoint is written into ``run_dir`` (the caller clears them
    once it has stored the run's results). Rank 0 keeps ``heartbeat`` (a file) saying how far
    the run is (scale_lth.training.heartbeat).
    """
    device = session.device
    iterations_per_epoch = len(data.train)
    total = schedule.total
    if not 0 <= start_step <= total:
        raise ValueError(f"start step {start_step} is outside the run's {total} steps")
    eval_every = max(1, eval_every)
    save_points = dict(save_points or {})

    model.to(device)
    if training.channels_last:
        model.to(memory_format=torch.channels_last)
    checkpoints = Checkpoints(run_dir)
    latest = checkpoints.latest()
    state = TrainingState.read(latest, session.rank) if latest is not None else None
    if state is not None and state.world_size != session.world_size:
        raise ValueError(
            f"{run_dir} was checkpointed by {state.world_size} ranks and cannot resume with "
            f"{session.world_size}: each rank's random state is part of the checkpoint"
        )
    if state is not None:
        model.load_state_dict(state.model)
    masked = MaskedParameters(model, mask) if mask is not None else None
    if masked is not None:
        masked.zero_weights()
    network = model
    if session.world_size > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        network = DistributedDataParallel(model, device_ids=device_ids)
    optimizer = build_optimizer(model, training)
    step = state.step if state is not None else start_step
    scheduler = build_scheduler(optimizer, schedule, start_step)
    scaler = torch.amp.GradScaler(device.type) if training.amp == "fp16" else None
    history = History(list(state.history) if state is not None else [])
    seconds = state.seconds if state is not None else 0.0
    if state is not None:
        optimizer.load_state_dict(state.optimizer)
        scheduler.load_state_dict(state.scheduler)
        if scaler is not None and state.scaler is not None:
            scaler.load_state_dict(state.scaler)

    loss_sum = torch.zeros((), device=device)
    loss_count = 0
    if state is not None and state.loss_sum is not None:
        loss_sum, loss_count = state.loss_sum.to(device), state.loss_count

    untimed = 0.0  # time spent reporting rows (tracking), which is not training

    def measure(at: int) -> None:
        nonlocal loss_sum, loss_count, untimed
        train_loss = (loss_sum / loss_count).item() if loss_count else math.nan
        row = {"iteration": at, "lr": scheduler.get_last_lr()[0], "train_loss": train_loss}
        for split, batches in data.evaluation.items():
            measured = evaluate(network, batches, device, training.amp, session.world_size > 1)
            for name, value in measured.items():
                row[f"{split}_{name}"] = value
        history.record(row)
        loss_sum, loss_count = torch.zeros((), device=device), 0
        if on_eval is not None and session.is_chief:
            reporting = time.perf_counter()
            on_eval(row)
            untimed += time.perf_counter() - reporting

    def checkpoint(at: int) -> None:
        snapshot = TrainingState(
            step=at,
            model=model.state_dict(),
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            scaler=scaler.state_dict() if scaler is not None else None,
            history=history.rows,
            seconds=seconds,
            world_size=session.world_size,
            loss_sum=loss_sum.detach().cpu(),
            loss_count=loss_count,
        )
        snapshot.write(checkpoints.folder(at), session.rank)
        session.barrier()
        if session.is_chief:
            checkpoints.publish(at, session.world_size)

    alive = Heartbeat(heartbeat, step, total) if heartbeat and session.is_chief else None
    clock = time.perf_counter()
    if state is None:
        if step in save_points and session.is_chief:
            save_points[step](model, step)
        measure(step)
    network.train()
    while step < total:
        data.train.epoch = step // iterations_per_epoch
        skip = step % iterations_per_epoch
        for index, (images, labels) in enumerate(data.train):
            if index < skip:
                continue
            with autocast(device, training.amp):
                logits = network(images)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=training.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
            else:
                loss.backward()
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if masked is not None:
                masked.zero_weights()
            scheduler.step()
            loss_sum += loss.detach()  # read only when measured: no device sync per step
            loss_count += 1
            step += 1
            if alive is not None:
                alive.beat(step)
            if step % eval_every == 0 or step == total:
                measure(step)
            if step in save_points or (checkpoint_every and step % checkpoint_every == 0):
                seconds += time.perf_counter() - clock
                if step in save_points and session.is_chief:
                    save_points[step](model, step)
                if checkpoint_every and step % checkpoint_every == 0 and step < total:
                    checkpoint(step)
                clock = time.perf_counter()
            if step == total:
                break
    network.eval()
    seconds += time.perf_counter() - clock - untimed
    return RunResult(history, seconds, state.step if state is not None else None)
