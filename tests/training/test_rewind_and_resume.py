"""Rewinding starts a level at (step-k weights x mask) with the schedule at k; a stopped run
resumed from its checkpoint ends bitwise equal to an uninterrupted one (CPU, same seed)."""

import pytest
import torch

from scale_lth import models
from scale_lth.config import load
from scale_lth.lottery.job import Job
from scale_lth.lottery.starts import run_start
from scale_lth.results import Observer, RunKey
from scale_lth.training import clock
from scale_lth.training.loop import Cadence, RunData, train_run
from scale_lth.training.session import Session
from scale_lth.training.state import Checkpoints
from tests.batches import ListBatches, plain_steps, random_data
from tests.runs import runner

SCHEDULE = [
    "training.optimizer=sgd",
    "training.lr=0.1",
    "training.momentum=0.9",
    "training.weight_decay=1e-4",
    "training.lr_schedule=step",
    "training.warmup=30it",
    "training.milestones=[40it]",
    "training.duration=60it",
    "training.eval_every=10it",
    "rewinding.step=20it",
]


def test_rewind_checkpoint_is_the_step_k_state_and_a_level_starts_there(smoke_config, tmp_path):
    config = smoke_config(*SCHEDULE)
    experiment = runner(config)
    experiment.execute(Job([0], [0]))
    rewind = torch.load(experiment.layout.rewind_path(0))
    assert rewind["step"] == 20

    # The same training stopped at step k holds exactly the saved step-k weights.
    stopped = runner(smoke_config(*SCHEDULE, "training.duration=20it"))
    stopped.execute(Job([0], [0]))
    at_k = torch.load(stopped.layout.final_path(RunKey(0, 0)))
    assert all(torch.equal(at_k[name], rewind["model"][name]) for name in at_k)

    start = run_start(experiment.store, RunKey(0, 1), experiment.steps, snip_batches=None)
    assert start.step == 20
    captured = {}

    def capture(model, step):
        captured.update({n: t.detach().clone() for n, t in model.state_dict().items()})

    result = train_run(
        experiment.store.network(start.weights),
        experiment.run_data(RunKey(0, 0)),
        config.training,
        Session(),
        schedule=start.schedule,
        cadence=Cadence(experiment.steps.eval_every, save_points={start.step: capture}),
        run_dir=tmp_path / "level_1",
        mask=start.mask,
        start_step=start.step,
    )
    for name, weights in rewind["model"].items():
        expected = weights * start.mask[name] if name in start.mask else weights
        assert torch.equal(captured[name], expected), name
    assert any(int((~keep).sum()) for keep in start.mask.values())
    dense_rows = experiment.layout.read_metrics(RunKey(0, 0))["history"]
    dense_lr = next(row["lr"] for row in dense_rows if row["iteration"] == 20)
    assert result.history.rows[0]["iteration"] == 20
    assert result.history.rows[0]["lr"] == dense_lr
    assert 0 < dense_lr < config.training.lr  # mid-warmup: the check compares a moving rate


class StopAt(Observer):
    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def evaluated(self, key, row):
        if row["iteration"] >= self.iteration:
            raise KeyboardInterrupt(f"stopped at {row['iteration']}")


def test_a_run_resumed_from_its_checkpoint_ends_bitwise_equal(smoke_config, tmp_path):
    overrides = [
        "model.name=conv2",
        "model.dropout=0.5",  # the random number generators must come back too
        *SCHEDULE,
        "training.duration=80it",
        "training.checkpoint_every=1ep",
        "rewinding.step=0it",
    ]
    whole = runner(smoke_config(*overrides, f"output_root={tmp_path / 'whole'}"))
    whole.execute(Job([0], [0]))

    config = smoke_config(*overrides, f"output_root={tmp_path / 'stopped'}")
    with pytest.raises(KeyboardInterrupt):
        runner(config, observers=[StopAt(50)]).execute(Job([0], [0]))
    resumed = runner(config)
    resumed.execute(Job([0], [0]))

    key = RunKey(0, 0)
    metrics = resumed.layout.read_metrics(key)
    assert metrics["resumed_from"] == 40  # the last epoch checkpoint before the stop
    expected = torch.load(whole.layout.final_path(key))
    final = torch.load(resumed.layout.final_path(key))
    assert all(torch.equal(final[name], expected[name]) for name in expected)
    assert metrics["history"] == whole.layout.read_metrics(key)["history"]
    assert not list(resumed.layout.run_dir(key).glob("resume*"))  # checkpoints cleared


class FirstStreams(Observer):
    """The torch random state each run starts training with (its first evaluation comes before
    any step, and evaluation draws no dropout)."""

    def __init__(self) -> None:
        self.states: dict[RunKey, torch.Tensor] = {}

    def evaluated(self, key, row):
        self.states.setdefault(key, torch.get_rng_state())


def test_each_run_draws_dropout_from_a_stream_of_its_own(smoke_config):
    config = smoke_config("model.name=conv2", "model.dropout=0.5", "training.duration=20it")
    streams = FirstStreams()
    runner(config, observers=[streams]).execute(Job([0, 1], [0, 1], branches=["reinit"]))
    states = list(streams.states.values())
    assert len(states) == 2 * 3
    assert all(not torch.equal(a, b) for i, a in enumerate(states) for b in states[i + 1 :])


def test_a_run_is_never_resumed_with_another_world_size(smoke_config, tmp_path):
    config = smoke_config(*SCHEDULE, "training.checkpoint_every=10it")
    stopped = runner(config, observers=[StopAt(30)])
    with pytest.raises(KeyboardInterrupt):
        stopped.execute(Job([0], [0]))
    run_dir = stopped.layout.run_dir(RunKey(0, 0))
    assert Checkpoints(run_dir).world_size() == 1
    with pytest.raises(ValueError, match="checkpointed by 1 ranks and cannot resume with 2"):
        train_run(
            stopped.store.network(),
            stopped.run_data(RunKey(0, 0)),
            config.training,
            Session(rank=0, world_size=2),
            schedule=stopped.steps.schedule,
            run_dir=run_dir,
        )
    runner(config).execute(Job([0], [0]))
    metrics = stopped.layout.read_metrics(RunKey(0, 0))
    assert metrics["world_size"] == 1 and metrics["per_worker_batch"] == config.data.batch_size


class Timeline:
    """A time source that moves only when told: a training batch takes one second, reporting
    a row a hundred."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedBatches(ListBatches):
    def __init__(self, batches, timeline: Timeline) -> None:
        super().__init__(batches)
        self.timeline = timeline

    def __iter__(self):
        for batch in self.batches:
            self.timeline.now += 1.0
            yield batch


def test_a_resumed_run_counts_its_training_time_once(tmp_path, monkeypatch):
    """The recorded seconds are the time in training and evaluation steps: reporting is left
    out of every stretch, the one a checkpoint records included, so a resumed run counts each
    step it kept once and no reporting at all."""
    timeline = Timeline()
    monkeypatch.setattr(clock, "now", timeline)
    training = load(None, ["training.duration=20it", "training.eval_every=1it"]).training
    data = random_data()
    data = RunData(TimedBatches(data.train.batches, timeline), data.evaluation)  # 5 an epoch

    def report(stop_at=None):
        def on_eval(row):
            timeline.now += 100.0
            if stop_at is not None and row["iteration"] >= stop_at:
                raise KeyboardInterrupt

        return on_eval

    steps = plain_steps(training, data, checkpoint_every=5)

    def attempt(on_eval):
        model = models.build("conv2", num_classes=10, in_channels=1, image_size=8)
        return train_run(
            model, data, training, Session(), **steps, run_dir=tmp_path, on_eval=on_eval
        )

    with pytest.raises(KeyboardInterrupt):
        attempt(report(stop_at=12))  # steps 11 and 12 are lost: the checkpoint is at 10
    resumed = attempt(report())
    assert resumed.resumed_from == 10
    assert resumed.seconds == 20.0  # one second for each of the 20 steps, none for reporting
