"""Runs in an MLflow experiment: found by their tags (every lookup of a run goes through
``tagged_runs``), and metrics logged to them in calls MLflow accepts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from scale_lth.locks import exclusive

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Run

MAX_METRICS_PER_CALL = 1000  # MLflow's limit for one log_batch
MAX_RUNS_PER_SEARCH = 1000  # MLflow's default for search_runs (an experiment has far fewer)


def tagged_runs(
    client: MlflowClient,
    experiment_id: str,
    tags: dict[str, str],
    max_results: int = MAX_RUNS_PER_SEARCH,
) -> list[Run]:
    """The experiment's runs carrying every one of ``tags``."""
    query = " and ".join(f"tags.{key} = '{value}'" for key, value in tags.items())
    return client.search_runs([experiment_id], filter_string=query, max_results=max_results)


def find_run(client: MlflowClient, experiment_id: str, tags: dict[str, str]) -> str | None:
    """The id of a run carrying every one of ``tags``, else None."""
    found = tagged_runs(client, experiment_id, tags, max_results=1)
    return found[0].info.run_id if found else None


def found_or_made(
    client: MlflowClient,
    experiment_id: str,
    tags: dict[str, str],
    make: Callable[[], str],
    lock: Path,
) -> tuple[str, bool]:
    """The run carrying ``tags``, made by ``make`` (which returns its id) where there is none;
    the lock file ``lock`` keeps two processes from both making it. Returns the run's id and
    whether it was made now."""
    with exclusive(lock):
        found = find_run(client, experiment_id, tags)
        return (found, False) if found is not None else (make(), True)


def log_metrics(client: MlflowClient, run_id: str, metrics: list[Metric]) -> None:
    """In as many calls as MLflow's limit per call asks."""
    for start in range(0, len(metrics), MAX_METRICS_PER_CALL):
        client.log_batch(run_id, metrics=metrics[start : start + MAX_METRICS_PER_CALL])
