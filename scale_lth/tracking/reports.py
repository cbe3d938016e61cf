"""What a report or a comparison leaves in MLflow: its files and its metrics on the runs of the
experiment, or on a run of its own. A store that does not answer gets a line, not an error:
every file is on disk already."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from scale_lth.config import Config
from scale_lth.console import say
from scale_lth.results import Layout
from scale_lth.tracking.experiment import existing_experiment, training_experiment
from scale_lth.tracking.names import curve_name, summary_name
from scale_lth.tracking.params import changed_settings, param_value, setting_tags
from scale_lth.tracking.runs import find_run, found_or_made, log_metrics, tagged_runs
from scale_lth.tracking.ui import runs_page, ui_base
from scale_lth.tracking.uri import without_credentials

if TYPE_CHECKING:
    from mlflow import MlflowClient

Metrics = list[tuple[str, float, int]]  # (name, value, step)


def log_report(
    config: Config,
    files: list[Path],
    by_replicate: dict[int, Metrics],
    summary: Metrics,
    curves: dict[str, Metrics],
) -> None:
    """Attach the report's files to every trunk (parent) run of the experiment and log each
    replicate's own metrics (its curve, by level) on its parent; log the table over replicates
    and the files once more on the experiment's summary run, and each method's curve on a curve
    run of its own (``run_kind=curve``): selected together, they draw one chart, a line per
    method. Say in the experiment's description what made it and where its report is."""
    from mlflow import MlflowClient

    try:
        client = MlflowClient(config.tracking.uri)
        experiment = existing_experiment(client, config.tracking.experiment)
        trunks = {"experiment_hash": config.hash, "run_kind": "trunk"}
        for run in tagged_runs(client, experiment, trunks):
            replicate = int(run.data.tags["replicate"])
            _attach(client, run.info.run_id, files, by_replicate.get(replicate, []))
        _attach(client, _summary_run(client, experiment, config), files, summary)
        for method, curve in curves.items():
            run_id = _curve_run(client, experiment, config, method)
            client.set_tag(run_id, "replicates", str(len(by_replicate)))
            _attach(client, run_id, [], curve)
        client.set_experiment_tag(experiment, "mlflow.note.content", _description(config))
    except Exception as error:  # whatever the client meets: the store is away
        say(f"MLflow at {config.tracking.uri} did not take the report ({error})")


def _attach(client: MlflowClient, run_id: str, paths: list[Path], metrics: Metrics) -> None:
    from mlflow.entities import Metric

    for path in paths:
        client.log_artifact(run_id, str(path), artifact_path="report")
    log_metrics(client, run_id, [Metric(name, value, 0, step) for name, value, step in metrics])


def _report_run(
    client: MlflowClient,
    experiment: str,
    config: Config,
    tags: dict[str, str],
    name: str,
    described: dict[str, str] | None = None,
) -> str:
    """The run of the report carrying ``tags`` (found by them; made once, whichever process
    asks first, with ``described`` as further tags), finished as soon as it is made: it holds
    what the report logs."""

    def make() -> str:
        run = client.create_run(experiment, tags={**tags, **(described or {})}, run_name=name)
        client.set_terminated(run.info.run_id)
        return run.info.run_id

    lock = Layout(config.experiment_dir).tracking_dir / ".runs.lock"
    return found_or_made(client, experiment, tags, make, lock)[0]


def _summary_run(client: MlflowClient, experiment: str, config: Config) -> str:
    """The experiment's summary run (the report over every replicate)."""
    tags = {"run_kind": "summary", "summary_of": config.hash}
    return _report_run(client, experiment, config, tags, summary_name(config))


def _curve_run(client: MlflowClient, experiment: str, config: Config, method: str) -> str:
    """The curve run of one method of the experiment."""
    tags = {"run_kind": "curve", "experiment_hash": config.hash, "method": method}
    described = {**setting_tags(config), "experiment": config.name}
    return _report_run(client, experiment, config, tags, curve_name(config, method), described)


def _description(config: Config) -> str:
    """The experiment's note in the MLflow UI (Markdown): its config, the command that made
    it and where its results and report are."""
    words = ["scale-lth", *sys.argv[1:]]  # a URL with credentials is given without them
    command = " ".join(shlex.quote(str(without_credentials(word))) for word in words)
    settings = changed_settings(config)
    changed = "\n".join(f"- `{name}`: {value}" for name, value in settings.items())
    return (
        f"**{config.name}** (experiment hash `{config.hash}`)\n\n"
        f"Made by `{command}`\n\n"
        f"Results in `{config.experiment_dir}`, report in "
        f"`{Layout(config.experiment_dir).report_dir}`\n\n"
        f"Settings that differ from the defaults:\n{changed or '- none'}\n\n"
        "Select the runs tagged `run_kind=curve` and open the chart view: one chart, a line per "
        "method, `test_accuracy_by_weights_remaining_bp` with the weights remaining (basis "
        "points) as its step."
    )


def log_comparison(
    uri: str,
    experiment_name: str,
    comparison: str,
    legends: dict[str, str],
    paths: list[Path],
    compared: list[tuple[str, str]],
) -> str:
    """A run of its own (found again by ``comparison``, its id) in ``experiment_name`` holding
    a comparison's table and plot; ``legends`` (folder -> what differs) become its params. The
    curve runs of the ``compared`` experiments (MLflow experiment name, experiment hash) get the
    tag ``compared_in.<comparison>``, a tag per comparison so that one experiment can be in
    several. Returns a line saying where, with the address that charts those curve runs
    together, or that the store did not take it."""
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
        together = _tag_curve_runs(client, compared, f"compared_in.{comparison}")
    except Exception as error:  # whatever the client meets: the store is away
        return f"MLflow at {uri} did not take the comparison ({error})"
    where = f"MLflow at {uri}: experiment '{experiment_name}', run 'compare {comparison}'"
    if not together:
        return where
    search = f"tags.`compared_in.{comparison}` = 'yes'"
    page = runs_page(ui_base(uri), together, charts=True, search=search)
    return f"{where}; the curve runs together: {page}"


def _tag_curve_runs(client: MlflowClient, compared: list[tuple[str, str]], tag: str) -> list[str]:
    """Tag the curve runs of the compared experiments; the ids of the MLflow experiments that
    hold them."""
    holding = []
    for name, experiment_hash in compared:
        found = client.get_experiment_by_name(name)
        if found is None:
            continue
        curves = {"run_kind": "curve", "experiment_hash": experiment_hash}
        for run in tagged_runs(client, found.experiment_id, curves):
            client.set_tag(run.info.run_id, tag, "yes")
            if found.experiment_id not in holding:
                holding.append(found.experiment_id)
    return holding
