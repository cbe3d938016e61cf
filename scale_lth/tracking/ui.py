"""The MLflow UI on an experiment: the command that serves it, the address of the experiment's
page, and the line the lottery prints with both."""

from __future__ import annotations

import sys
from pathlib import Path

from scale_lth.config import Config
from scale_lth.tracking.experiment import existing_experiment
from scale_lth.tracking.uri import local_store

UI_PORT = 5000  # where `ui_command` serves the UI


def ui_command(config: Config) -> str:
    """The one command that opens the MLflow UI on this experiment's store, on loopback."""
    store = local_store(config.tracking.uri)
    if store is None:
        return f"open {config.tracking.uri} in a browser"
    mlflow = Path(sys.executable).with_name("mlflow")
    return f"{mlflow} ui --backend-store-uri sqlite:///{store} --host 127.0.0.1 --port {UI_PORT}"


def experiment_page(base: str, experiment_id: str, charts: bool = False) -> str:
    """The UI's page of an experiment's training runs (MLflow 3.17 picks its model-training
    view from the address, ``workflowType``, not from the experiment's kind), or their charts."""
    view = "&compareRunsMode=CHART" if charts else ""
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning{view}"


def ui_line(config: Config) -> str:
    """What to run and open to see the experiment in the UI."""
    from mlflow import MlflowClient

    base = f"http://127.0.0.1:{UI_PORT}"
    if local_store(config.tracking.uri) is None:
        base = config.tracking.uri.rstrip("/")
    try:
        client = MlflowClient(config.tracking.uri)
        page = experiment_page(base, existing_experiment(client, config.tracking.experiment))
    except Exception:  # the store is away: its front page, then the experiment by name
        page = base
    return f"MLflow UI: {ui_command(config)}  (then open {page})"
