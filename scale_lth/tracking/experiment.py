"""The MLflow experiment a config's runs go to: its name, its kind (model training), made once
on the driver before any worker logs to it."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING

from scale_lth.config import Config
from scale_lth.locks import exclusive
from scale_lth.tracking.uri import local_store, tracking_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

# MLflow 3's UI labels an experiment by this kind (model training, not GenAI), which it
# otherwise guesses. The kind does not choose the view a page opens on: MLflow 3.17 picks that
# from the page's address (``workflowType``, see ``ui.runs_page``), as a browser showed.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def experiment_name(config: Config) -> str:
    return config.tracking.experiment or config.name


def training_experiment(client: MlflowClient, name: str, location: str | None = None) -> str:
    """The id of the model-training experiment ``name``, made (or marked) as one if needed."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        # another process (a task of the same sweep) made it just now: it is found this time
        return training_experiment(client, name, location)
    for key, value in EXPERIMENT_KIND.items():
        if found.tags.get(key) != value:
            client.set_experiment_tag(found.experiment_id, key, value)
    return found.experiment_id


def existing_experiment(client: MlflowClient, name: str) -> str:
    """The id of the existing experiment ``name`` (made by ``prepare_tracking``)."""
    found = client.get_experiment_by_name(name)
    if found is None:
        raise LookupError(f"MLflow has no experiment {name!r}")
    return found.experiment_id


def prepare_tracking(config: Config) -> Config:
    """On the driver: fix the tracking URI for every worker and create the MLflow experiment
    (artifacts beside a local SQLite store, in ``mlruns/``)."""
    if not config.tracking.enabled:
        return config
    from mlflow import MlflowClient

    uri = tracking_uri(config)
    name = experiment_name(config)
    store = local_store(uri)
    # Two processes creating a SQLite store's tables at once (a sweep's tasks starting
    # together) make one of them fail: the first use is serialised.
    lock = store.with_name(f".{store.name}.lock") if store is not None else None
    with exclusive(lock) if lock is not None else contextlib.nullcontext():
        location = (store.parent / "mlruns").as_uri() if store is not None else None
        training_experiment(MlflowClient(uri), name, location)
    return dataclasses.replace(
        config, tracking=dataclasses.replace(config.tracking, uri=uri, experiment=name)
    )
