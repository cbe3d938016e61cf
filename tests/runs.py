"""The lottery's worker side run in the test process, as a world of ``session``'s size."""

import dataclasses

from scale_lth.data import DataInfo
from scale_lth.lottery.runner import Runner
from scale_lth.lottery.steps import Steps
from scale_lth.training.session import Session


def runner(config, session: Session | None = None, observers=()) -> Runner:
    """A Runner with the step counts the driver would give a job of ``session``'s ranks."""
    session = session or Session()
    config = dataclasses.replace(
        config, scaling=dataclasses.replace(config.scaling, num_workers=session.world_size)
    )
    steps = Steps.of(config, DataInfo.load(config.data_dir))
    return Runner(config, session, steps, list(observers))
