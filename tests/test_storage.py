"""Writes that survive kills: a process SIGKILLed at random moments while it rewrites a run's
weights, mask, metrics and resumable checkpoint leaves every one of them loadable, each at one
whole version (the previous or the new one), never a half-written file."""

import random
import subprocess
import sys
import time

import pytest
import torch

from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey
from scale_lth.storage import load_torch
from scale_lth.training.state import Checkpoints, TrainingState
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration]  # real processes, killed

KEY = RunKey(0, 1)
WRITER = """
import itertools, sys
from pathlib import Path
import torch
from scale_lth.results import Layout, RunKey
from scale_lth.pruning import Mask
from scale_lth.storage import atomic_torch_save
from scale_lth.training.state import Checkpoints, TrainingState

layout, key = Layout(Path(sys.argv[1])), RunKey(0, 1)
checkpoints = Checkpoints(layout.run_dir(key))
for version in itertools.count(int(sys.argv[2])):
    weights = {"w": torch.full((1_000_000,), float(version))}
    atomic_torch_save(weights, layout.final_path(key))
    Mask({"w": torch.arange(4096) % (version % 7 + 2) == 0}).save(layout.mask_path(key))
    layout.write_metrics(key, {"version": version, "rows": list(range(5000))})
    state = TrainingState(version, weights, {}, {}, None, [], 0.0, world_size=1)
    state.write(checkpoints.folder(version), rank=0)
    checkpoints.publish(version, world_size=1)
    print(version, flush=True)
"""


def test_kills_during_writes_leave_every_file_whole(tmp_path):
    layout = Layout(tmp_path / "experiment")
    chooser = random.Random(0)
    version = 0
    for _ in range(6):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(layout.root), str(version)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        first = writer.stdout.readline()  # one whole round written: every file exists
        assert first.strip(), "the writer printed nothing"
        time.sleep(chooser.uniform(0.0, 0.3))
        writer.kill()
        writer.wait()
        version = int(first) + 1000  # the next writer's versions are new ones

        final = load_torch(layout.final_path(KEY))["w"]
        assert torch.equal(final, torch.full_like(final, final[0].item()))  # one version
        mask = Mask.load(layout.mask_path(KEY))["w"]
        assert any(torch.equal(mask, torch.arange(4096) % period == 0) for period in range(2, 9))
        metrics = layout.read_metrics(KEY)
        assert metrics["rows"] == list(range(5000))
        checkpoints = Checkpoints(layout.run_dir(KEY))
        state = TrainingState.read(checkpoints.latest(), rank=0)
        assert state.step == int(state.model["w"][0].item())
        assert (
            sorted(p.name for p in layout.run_dir(KEY).glob("resume-*"))
            == [checkpoints.latest().name]
            or checkpoints.latest().is_dir()
        )
