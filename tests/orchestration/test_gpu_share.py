"""``scaling.gpus_per_worker``: workers reserve a share of a GPU, so small networks' runs pack
several to a GPU; the groups that fit are counted in those shares, and the group's process
group is gloo where its workers train alone (NCCL refuses two ranks on one GPU)."""

import pytest

from scale_lth.config import load
from scale_lth.errors import UserError
from scale_lth.orchestration.ray_train import group_trainer, worker_groups
from tests.conftest import CONFIGS


def config(*overrides: str):
    return load(CONFIGS / "smoke.yaml", ["scaling.use_gpu=true", *overrides])


@pytest.mark.parametrize(
    "share, gpus, groups",
    [(1, 2, 2), (0.5, 2, 4), (0.25, 1, 4), (0.1, 1, 10), (0.3, 1, 3), (0.25, 3, 12)],
)
def test_groups_of_one_worker_pack_as_many_as_the_shares_fit(share, gpus, groups):
    packed = config("scaling.num_workers=1", f"scaling.gpus_per_worker={share}")
    assert worker_groups(packed, cpus=64, gpus=gpus, where="here") == groups


def test_workers_training_runs_alone_share_a_gpu_in_one_group():
    shared = config(
        "scaling.parallelism=runs", "scaling.num_workers=4", "scaling.gpus_per_worker=0.25"
    )
    assert worker_groups(shared, cpus=8, gpus=1, where="here") == 1
    trainer = group_trainer(shared, {"group": "0"})
    assert trainer.scaling_config.resources_per_worker == {"CPU": 1, "GPU": 0.25}
    assert trainer.backend_config.backend == "gloo"
    with pytest.raises(UserError, match="needs 2 GPUs, the Ray cluster here has 1"):
        worker_groups(config(
            "scaling.parallelism=runs", "scaling.num_workers=8", "scaling.gpus_per_worker=0.25"
        ), cpus=8, gpus=1, where="here")  # fmt: skip


def test_ddp_groups_keep_nccl_and_a_whole_gpu_per_worker():
    trainer = group_trainer(config("scaling.num_workers=2"), {"group": "0"})
    assert trainer.scaling_config.resources_per_worker == {"CPU": 1, "GPU": 1.0}
    assert trainer.backend_config.backend == "nccl"
