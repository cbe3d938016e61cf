"""Each worker group's TorchTrainer bounds every retry by ``scaling.max_failures``: lost
workers or nodes, and a group the cluster has no room to start (Ray Train's own default tries
that again without limit, so a cluster that lost a node for good would wait for ever)."""

from scale_lth.config import load
from scale_lth.orchestration.ray_train import group_trainer
from tests.conftest import CONFIGS


def test_a_group_that_cannot_start_is_tried_again_as_often_as_a_failed_one(tmp_path):
    config = load(CONFIGS / "smoke.yaml", [f"output_root={tmp_path}", "scaling.max_failures=3"])
    failure = group_trainer(config, {"group": "0"}).run_config.failure_config
    assert failure.max_failures == 3
    assert failure.controller_failure_limit == 3
