"""The MLflow UI on an experiment: the command that serves it, the addresses of its pages, and
the line the lottery prints with both."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import quote

from scale_lth.config import Config
from scale_lth.tracking.experiment import existing_experiment
from scale_lth.tracking.uri import local_store

UI_PORT = 5000  # where `ui_command` serves the UI
CURVE_RUNS = "tags.run_kind = 'curve'"  # a runs page's filter: the report's curve runs


def ui_command(config: Config) -> str:
    """The one command that opens the MLflow UI on this experiment's store, on loopback."""
    store = local_store(config.tracking.uri)
    if store is None:
        return f"open {config.tracking.uri} in a browser"
    mlflow = Path(sys.executable).with_name("mlflow")
    return f"{mlflow} ui --backend-store-uri sqlite:///{store} --host 127.0.0.1 --port {UI_PORT}"


def ui_base(uri: str) -> str:
    """Where the UI of the store at ``uri`` is: the server itself, or `ui_command`'s."""
    return f"http://127.0.0.1:{UI_PORT}" if local_store(uri) is not None else uri.rstrip("/")


def runs_page(
    base: str, experiment_ids: list[str], charts: bool = False, search: str | None = None
) -> str:
    """The UI's page of the training runs of one experiment, or of several side by side
    (MLflow 3.17 picks its model-training view from the address, ``workflowType``, not from
    the experiment's kind); as charts, and filtered by ``search``, where asked."""
    query = "workflowType=machine_learning"
    query += "&compareRunsMode=CHART" if charts else ""
    query += f"&searchFilter={quote(search)}" if search else ""
    if len(experiment_ids) == 1:
        return f"{base}/#/experiments/{experiment_ids[0]}/runs?{query}"
    together = quote(json.dumps(experiment_ids, separators=(",", ":")))
    return f"{base}/#/compare-experiments/s?experiments={together}&{query}"


def ui_line(config: Config) -> str:
    """What to run and open to see the experiment in the UI: its curve runs as charts, one
    chart a measure, a line per method."""
    from mlflow import MlflowClient

    base = ui_base(config.tracking.uri)
    try:
        client = MlflowClient(config.tracking.uri)
        experiment = existing_experiment(client, config.tracking.experiment)
        page = runs_page(base, [experiment], charts=True, search=CURVE_RUNS)
    except Exception:  # the store is away: its front page, then the experiment by name
        page = base
    return f"MLflow UI: {ui_command(config)}  (then open {page})"
