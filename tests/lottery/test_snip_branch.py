"""The SNIP baseline inside a lottery level: its mask is scored where the worker's minibatches
live (tests/gpu runs the same level on a CUDA device) and keeps exactly the ticket's count."""

import torch

from scale_lth.lottery.job import Job
from scale_lth.pruning import Mask
from scale_lth.results import RunKey
from scale_lth.training.session import Session
from tests.runs import runner


def run_a_level_with_snip(config, device: torch.device) -> None:
    """Level 0 and level 1 with its SNIP baseline on ``device``; checks the baseline."""
    experiment = runner(config, Session(device=device))
    branch = config.run_branch("snip")
    experiment.execute(Job([0], [0, 1], branches=[branch]))
    layout = experiment.layout
    ticket = Mask.load(layout.mask_path(RunKey(0, 1)))
    snip = Mask.load(layout.mask_path(RunKey(0, 1, branch)))
    assert snip.num_kept == ticket.num_kept and snip != ticket
    final = torch.load(layout.final_path(RunKey(0, 1, branch)))
    for name, keep in snip.items():
        assert torch.count_nonzero(final[name][~keep]) == 0, name
    assert layout.read_metrics(RunKey(0, 1, branch))["start_step"] == 0


def test_the_snip_baseline_trains_inside_a_level(smoke_config):
    run_a_level_with_snip(smoke_config("training.duration=20it"), torch.device("cpu"))
