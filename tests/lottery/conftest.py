"""The reference lottery the end-to-end and fault tests compare against: configs/smoke.yaml
(2 levels, 3 baselines, 2 Ray workers over gloo) run once, uninterrupted, in a fresh folder;
and a small file of each dataset format the shipped configs read."""

import os

import pytest

from scale_lth.cli import main
from scale_lth.config import load
from scale_lth.data import DataInfo
from scale_lth.results import Layout
from tests.conftest import CONFIGS
from tests.formats import write_cifar, write_mnist, write_photo_imagefolder
from tests.processes import scale_lth

SMOKE = str(CONFIGS / "smoke.yaml")
# Long enough to interrupt anywhere: checkpoints every 50 steps, the rewind point at step 100.
OVERRIDES = ["training.duration=400it", "training.checkpoint_every=50it", "rewinding.step=100it"]
BRANCHES = ["reinit", "random_prune", "snip"]


@pytest.fixture(scope="session")
def experiment(tmp_path_factory):
    """(working folder, layout, config, completed process) of the uninterrupted lottery."""
    cwd = tmp_path_factory.mktemp("lottery")
    # MLflow's system metrics on CPU too, sampled every second (as on GPUs by default)
    env = {**os.environ, "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL": "1"}
    result = scale_lth(
        cwd, "lottery", SMOKE, *OVERRIDES, "tracking.system_metrics=true", "--quiet", env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = load(SMOKE, OVERRIDES)
    return cwd, Layout(cwd / config.experiment_dir), config, result


@pytest.fixture(scope="session")
def datasets(tmp_path_factory, digits_dir) -> dict:
    """Each dataset the configs name, written from its users' format by `scale-lth data`."""
    root = tmp_path_factory.mktemp("formats")
    write_mnist(root / "mnist-idx", train=300, test=60)
    write_cifar(root / "cifar-10-batches-py", per_batch=20, test=10)
    write_photo_imagefolder(root / "imagenet-jpeg")
    written = {"digits": digits_dir}
    for dataset, source in (("mnist", "mnist-idx"), ("cifar10", "cifar-10-batches-py"),
                            ("imagenet", "imagenet-jpeg")):  # fmt: skip
        out = root / dataset
        command = ["data", "write", "--source", dataset if dataset != "imagenet" else "imagefolder"]
        assert main([*command, "--root", str(root / source), "--out", str(out)]) == 0
        written[dataset] = out
    assert set(DataInfo.load(written["imagenet"]).splits) == {"train", "val", "test"}  # holdout
    return written
