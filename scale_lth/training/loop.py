"""One training run on one worker: steps, schedule, masks, evaluation, checkpoints, resumption.

A run starts from the weights its model holds (the caller loads init or rewind weights) at
``start_step``: the learning-rate schedule and the data order continue from there. Pruned
weights are zero before the first step and again after every optimizer step, so every forward
pass sees them at exactly 0.0 (see scale_lth.pruning.apply). Every ``checkpoint_every``
steps a resumable checkpoint is written into the run's folder; a run that finds one there when
it starts (after a failure, a kill or a requeue) continues from it bit for bit.

``train_run`` reads as its steps: restore, then for each batch a train step, an evaluation
when one is due, the weights saved where asked, a checkpoint when one is due; a clock counts
the time in training and evaluation steps only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from scale_lth.config.schema import TrainingConfig
from scale_lth.pruning import Mask
from scale_lth.training.clock import Clock
from scale_lth.training.evaluation import Batch, EvalBatches, Evaluator, Row, TrainingLoss
from scale_lth.training.heartbeat import Heartbeat
from scale_lth.training.history import History
from scale_lth.training.schedule import Schedule
from scale_lth.training.session import Session
from scale_lth.training.state import Checkpoints, TrainingState
from scale_lth.training.train_step import TrainStep

SavePoint = Callable[[torch.nn.Module, int], None]  # save(model, step), on rank 0


class TrainBatches(Protocol):
    """A run's shuffled training batches: ``len`` batches an epoch, in the order of ``epoch``
    (set it to read another epoch's order, as a resumed run does)."""

    epoch: int

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Batch]: ...


@dataclass
class RunData:
    """The loaders a run reads: shuffled training batches and evaluation splits by name."""

    train: TrainBatches
    evaluation: Mapping[str, EvalBatches]


@dataclass
class RunResult:
    history: History
    seconds: float  # wall time in training and evaluation steps (across resumptions)
    resumed_from: int | None  # the step a checkpoint brought the run back to, if any


@dataclass(frozen=True)
class Cadence:
    """When a run measures, saves and checkpoints, in steps."""

    eval_every: int = 1
    checkpoint_every: int = 0  # 0: never
    save_points: Mapping[int, SavePoint] = field(default_factory=dict)

    def evaluates_at(self, step: int, total: int) -> bool:
        return step % max(1, self.eval_every) == 0 or step == total

    def checkpoints_at(self, step: int, total: int) -> bool:
        return bool(self.checkpoint_every) and step % self.checkpoint_every == 0 and step < total

    def save(self, model: torch.nn.Module, step: int, session: Session) -> None:
        """Rank 0 calls the save point at ``step``, if there is one."""
        if step in self.save_points and session.is_chief:
            self.save_points[step](model, step)


def restore(
    model: torch.nn.Module, checkpoints: Checkpoints, session: Session
) -> TrainingState | None:
    """The run's latest checkpoint, if it has one, with its weights loaded into ``model`` and
    this rank's random state restored."""
    latest = checkpoints.latest()
    if latest is None:
        return None
    state = TrainingState.read(latest, session.rank)
    if state.world_size != session.world_size:
        raise ValueError(
            f"{checkpoints.run_dir} was checkpointed by {state.world_size} ranks and cannot "
            f"resume with {session.world_size}: each rank's random state is part of the "
            "checkpoint"
        )
    model.load_state_dict(state.model)
    return state


def batches_from(train: TrainBatches, step: int, total: int) -> Iterator[Batch]:
    """The training batches of steps ``step + 1`` to ``total``, epoch after epoch, exactly as an
    uninterrupted run reads them."""
    per_epoch = len(train)
    while step < total:
        train.epoch = step // per_epoch
        for index, batch in enumerate(train):
            if index < step % per_epoch:
                continue
            yield batch
            step += 1
            if step == total:
                return


def checkpoint(
    checkpoints: Checkpoints,
    train_step: TrainStep,
    step: int,
    history: History,
    loss: TrainingLoss,
    seconds: float,
    session: Session,
) -> None:
    """Every rank writes its part of step's checkpoint; then rank 0 makes it the latest."""
    snapshot = TrainingState(
        step=step,
        model=train_step.model.state_dict(),
        **train_step.states(),
        history=history.rows,
        seconds=seconds,
        world_size=session.world_size,
        loss_sum=loss.total.detach().cpu(),
        loss_count=loss.count,
    )
    snapshot.write(checkpoints.folder(step), session.rank)
    session.barrier()
    if session.is_chief:
        checkpoints.publish(step, session.world_size)


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
    cadence: Cadence = Cadence(),
    on_eval: Callable[[Row], None] | None = None,
    heartbeat: Path | None = None,
) -> RunResult:
    """Train ``model`` from ``start_step`` to ``schedule.total`` (plain optimizer steps;
    ``training`` gives the optimizer, precision and loss). ``cadence`` says when to measure a
    row (handed to ``on_eval`` on rank 0), when to checkpoint into ``run_dir`` (the caller
    clears the checkpoints once it has stored the run's results) and at which steps to call a
    save point (rank 0: the rewind point). Rank 0 keeps ``heartbeat`` (a file) saying how far
    the run is (scale_lth.training.heartbeat)."""
    total = schedule.total
    if not 0 <= start_step <= total:
        raise ValueError(f"start step {start_step} is outside the run's {total} steps")
    model.to(session.device)
    if training.channels_last:
        model.to(memory_format=torch.channels_last)
    checkpoints = Checkpoints(run_dir)
    state = restore(model, checkpoints, session)
    train_step = TrainStep(model, mask, training, session, schedule, start_step, state)
    step = state.step if state is not None else start_step
    history = History(list(state.history) if state is not None else [])
    loss = TrainingLoss(torch.zeros((), device=session.device))
    if state is not None and state.loss_sum is not None:
        loss = TrainingLoss(state.loss_sum.to(session.device), state.loss_count)
    clock = Clock(state.seconds if state is not None else 0.0)
    evaluator = Evaluator(
        train_step.network, data.evaluation, training.amp, session, on_eval, clock
    )
    alive = Heartbeat(heartbeat, step, total) if heartbeat and session.is_chief else None
    clock.start()
    if state is None:
        with clock.paused():
            cadence.save(model, step, session)
        evaluator.measure(step, train_step.lr, loss, history)
    train_step.network.train()
    for images, labels in batches_from(data.train, step, total):
        loss.add(train_step(images, labels))
        step += 1
        if alive is not None:
            alive.beat(step)
        if cadence.evaluates_at(step, total):
            evaluator.measure(step, train_step.lr, loss, history)
        if step in cadence.save_points or cadence.checkpoints_at(step, total):
            with clock.paused():
                cadence.save(model, step, session)
                if cadence.checkpoints_at(step, total):
                    checkpoint(checkpoints, train_step, step, history, loss, clock.seconds, session)
    train_step.network.eval()
    clock.stop()
    return RunResult(history, clock.seconds, state.step if state is not None else None)
