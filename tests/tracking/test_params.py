"""What MLflow params hold: the experiment's settings, never the environment's values or
credentials."""

from mlflow import MlflowClient

from scale_lth.config import load
from scale_lth.tracking.experiment import prepare_tracking
from scale_lth.tracking.params import experiment_params, setting_tags
from scale_lth.tracking.writer import MlflowWriter


def test_params_hold_no_environment_values_or_credentials(tmp_path, monkeypatch):
    store = tmp_path / "from-the-environment.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    monkeypatch.setenv("SOME_TOKEN", "s3cr3t-value")
    config = prepare_tracking(load(None, ["data.path=https://reader:hunter2@data.example/digits"]))
    assert config.tracking.uri == f"sqlite:///{store}"  # taken from the environment
    run_id = MlflowWriter(config).parent(0)
    params = MlflowClient(config.tracking.uri).get_run(run_id).data.params
    assert params["training.lr"] == "0.1" and "tracking.uri" not in params
    assert params["data.path"] == "https://***@data.example/digits"
    for value in params.values():
        assert str(store) not in value and "s3cr3t" not in value and "hunter2" not in value
    assert set(params) == set(experiment_params(config))


def test_the_settings_that_differ_from_the_defaults_become_tags():
    config = load(None, ["pruning.fraction=0.3", "training.lr=0.1"])  # the second is the default
    assert setting_tags(config) == {"config.pruning.fraction": "0.3"}
