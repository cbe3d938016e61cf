"""An exported network (scale_lth.export) as a logged model of its run's MLflow run, in MLflow's
PyTorch flavor: the TorchScript module, which loads with torch alone, so that it can be
registered from the UI and served or loaded anywhere (``mlflow.pytorch.load_model``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from scale_lth.config import Config
from scale_lth.results import RunKey
from scale_lth.tracking.experiment import existing_experiment, experiment_name
from scale_lth.tracking.runs import find_run
from scale_lth.tracking.uri import URI_VARIABLE, tracking_uri
from scale_lth.tracking.writer import level_tags

LOGGED_NAME = "ticket"


def log_exported(config: Config, key: RunKey, module: torch.jit.ScriptModule) -> str:
    """Log ``module`` to the MLflow run of ``key``; return the logged model's URI. LookupError
    where MLflow has no such run."""
    import mlflow.pytorch
    from mlflow import MlflowClient

    uri, name = tracking_uri(config), experiment_name(config)
    client = MlflowClient(uri)
    run_id = find_run(client, existing_experiment(client, name), level_tags(config, key))
    if run_id is None:
        raise LookupError(f"MLflow has no run of {key} in experiment {name}")
    with fluent_store(uri):
        logged = mlflow.pytorch.log_model(
            module,
            name=LOGGED_NAME,
            run_id=run_id,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],  # no inference
            serialization_format="pickle",  # MLflow's name for torch.jit.save of a script module
        )
    return logged.model_uri


@contextmanager
def fluent_store(uri: str) -> Iterator[None]:
    """MLflow's fluent API (which ``log_model`` uses) on ``uri`` for the block only, and this
    process's environment as it was after it: ``mlflow.set_tracking_uri`` also sets
    MLFLOW_TRACKING_URI, which every process started later would inherit (a lottery started
    afterwards would track into this store)."""
    import mlflow

    before = os.environ.get(URI_VARIABLE)
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # the default; variable unset
        if before is not None:
            os.environ[URI_VARIABLE] = before
