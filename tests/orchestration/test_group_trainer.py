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


def callback_types(config) -> set[str]:
    trainer = group_trainer(config, {"group": "0"})
    return {type(callback).__name__ for callback in trainer._create_default_callbacks()}


def test_only_a_cluster_of_the_users_gets_the_placement_group_cleaner(tmp_path, monkeypatch):
    """The cleaner removes a dead controller's placement group from a cluster that lives on; a
    local Ray of the driver's own ends with it. Ray Data's shard manager serves no lottery."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    local = load(CONFIGS / "smoke.yaml", [f"output_root={tmp_path}"])
    cluster = load(
        CONFIGS / "smoke.yaml", [f"output_root={tmp_path}", "scaling.address=10.0.0.1:6379"]
    )
    assert "BackendSetupCallback" in callback_types(local)  # the process group is still made
    assert "PlacementGroupCleanerCallback" not in callback_types(local)
    assert "PlacementGroupCleanerCallback" in callback_types(cluster)
    assert "DatasetsCallback" not in callback_types(local) | callback_types(cluster)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")  # inside a Ray job on a cluster
    assert "PlacementGroupCleanerCallback" in callback_types(local)
