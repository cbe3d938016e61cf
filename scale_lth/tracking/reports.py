"""What a report or a comparison leaves in MLflow: its files and its metrics on the runs of the
experiment, or on a run of its own. A store that does not answer gets a line, not an error:
every file is on disk already."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scale_lth.config import Config
from scale_lth.console import say
from scale_lth.results import Layout
from scale_lth.tracking.experiment import existing_experiment, training_experiment
from scale_lth.tracking.params import param_value
from scale_lth.tracking.runs import find_run, found_or_made, log_metrics, tagged_runs

if TYPE_CHECKING:
    from mlflow import MlflowClient

Metrics = list[tuple[str, float, int]]  # (name, value, step)


def log_report(
    config: Config, files: list[Path], by_replicate: dict[int, Metrics], summary: Metrics
) -> None:
    """Attach the report's files to every trunk (parent) run of the experiment and log each
    replicate's own metrics (its curve, by level) on its parent; log the table over replicates
    and the files once more on the experiment's summary run."""
    from mlflow import MlflowClient

    try:
        client = MlflowClient(config.tracking.uri)
        experiment = existing_experiment(client, config.tracking.experiment)
        trunks = {"experiment_hash": config.hash, "run_kind": "trunk"}
        for run in tagged_runs(client, experiment, trunks):
            replicate = int(run.data.tags["replicate"])
            _attach(client, run.info.run_id, files, by_replicate.get(replicate, []))
        _attach(client, _summary_run(client, experiment, config), files, summary)
    except Exception as error:  # whatever the client meets: the store is away
        say(f"MLflow at {config.tracking.uri} did not take the report ({error})")


def _attach(client: MlflowClient, run_id: str, paths: list[Path], metrics: Metrics) -> None:
    from mlflow.entities import Metric

    for path in paths:
        client.log_artifact(run_id, str(path), artifact_path="report")
    log_metrics(client, run_id, [Metric(name, value, 0, step) for name, value, step in metrics])


def _summary_run(client: MlflowClient, experiment: str, config: Config) -> str:
    """The experiment's summary run (the report over every replicate), found by its tags."""
    tags = {"run_kind": "summary", "summary_of": config.hash}

    def make() -> str:
        run = client.create_run(experiment, tags=tags, run_name=f"{config.name} summary")
        client.set_terminated(run.info.run_id)
        return run.info.run_id

    lock = Layout(config.experiment_dir).tracking_dir / ".runs.lock"
    return found_or_made(client, experiment, tags, make, lock)[0]


def log_comparison(
    uri: str, experiment_name: str, comparison: str, legends: dict[str, str], paths: list[Path]
) -> str:
    """A run of its own (found again by ``comparison``, its id) in ``experiment_name`` holding
    a comparison's table and plot; ``legends`` (folder -> what differs) become its params.
    Returns a line saying where, or that the store did not take it."""
    from mlflow import MlflowClient

    try:
        client = MlflowClient(uri)
        experiment = training_experiment(client, experiment_name)
        tags = {"run_kind": "comparison", "comparison_id": comparison}
        run_id = find_run(client, experiment, tags)
        if run_id is None:
            run = client.create_run(experiment, tags=tags, run_name=f"compare {comparison}")
            run_id = run.info.run_id
            for folder, legend in legends.items():
                client.log_param(run_id, folder[:250], param_value(legend))
            client.set_terminated(run_id)
        for path in paths:
            client.log_artifact(run_id, str(path), artifact_path="compare")
    except Exception as error:  # whatever the client meets: the store is away
        return f"MLflow at {uri} did not take the comparison ({error})"
    return f"MLflow at {uri}: experiment '{experiment_name}', run 'compare {comparison}'"
