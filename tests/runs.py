"""The lottery's worker side run in the test process, as a world of ``session``'s size."""

import dataclasses

import torch

from scale_lth.data import DataInfo
from scale_lth.lottery.runner import Runner
from scale_lth.lottery.steps import Steps
from scale_lth.pruning import Mask
from scale_lth.results import RunKey
from scale_lth.training.evaluation import evaluate
from scale_lth.training.session import Session


def runner(config, session: Session | None = None, observers=()) -> Runner:
    """A Runner with the step counts the driver would give a job of ``session``'s ranks."""
    session = session or Session()
    config = dataclasses.replace(
        config, scaling=dataclasses.replace(config.scaling, num_workers=session.world_size)
    )
    steps = Steps.of(config, DataInfo.load(config.data_dir).splits["train"])
    return Runner(config, session, steps, list(observers))


def start_loss(runner: Runner, weights: dict, mask: Mask | None) -> float:
    """The validation loss of ``weights`` x ``mask``, measured as a run measures it."""
    model = runner.store.network(weights)
    if mask is not None:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name in mask:
                    parameter.mul_(mask[name])
    if runner.config.training.channels_last:
        model = model.to(memory_format=torch.channels_last)
    batches = runner.run_data(RunKey(0, 0)).evaluation["val"]
    return evaluate(model, batches, torch.device("cpu"), runner.config.training.amp)["loss"]
