"""What every launcher in ``jobs/`` shares: a grid of config overrides becomes a submitit job
array (SLURM, or the same grid with submitit's local executor), its ids are printed, and
``--wait`` waits and summarises.

Cluster options come from the config's ``launcher`` section and are overridden like any other
key: ``launcher.partition=gpu launcher.nodes=4 launcher.gpus_per_node=8``. Every task's config
is loaded and checked (and the partition looked up) before anything is submitted.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from scale_lth.config import load
from scale_lth.errors import UserError
from scale_lth.lottery.network import check_model
from scale_lth.orchestration.slurm import ExperimentTask, executor, start_after


@dataclass(frozen=True)
class Task:
    """One element of a sweep: ``scale-lth COMMAND... CONFIG OVERRIDES OPTIONS``."""

    command: list[str]  # the verb and its positional words before CONFIG, e.g. ["branch", "snip"]
    overrides: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def label(self) -> str:
        return " ".join([*self.command[1:], *self.overrides, *self.options]) or "(config as is)"


def parser(description: str, config: bool = False) -> argparse.ArgumentParser:
    """A launcher's options; with ``config``, the experiment's YAML comes first."""
    made = argparse.ArgumentParser(description=description)
    if config:
        made.add_argument("config", help="the experiment's YAML")
    made.add_argument(
        "--cluster",
        choices=("slurm", "local", "debug"),
        default=None,
        help="where the array runs (default: the config's launcher.cluster)",
    )
    made.add_argument("--wait", action="store_true", help="wait for every task and summarise")
    made.add_argument(
        "overrides",
        nargs="*",
        metavar="key.sub=value",
        help="overrides for every task, launcher.* cluster options included",
    )
    return made


def prepare(config_path: str, args: argparse.Namespace, tasks: Sequence[Task]):
    """Every task's config loaded and checked, the executor made and its partition looked up,
    before anything is submitted: (configs, executor)."""
    configs = [load(config_path, [*args.overrides, *task.overrides]) for task in tasks]
    for config in configs:
        check_model(config)
    runner = executor(configs[0], args.cluster)
    if runner.cluster == "slurm":
        check_partition(configs[0].launcher.partition)
    return configs, runner


def submit_array(runner, tasks: Sequence[Task], config_path: str, args, after=()) -> list:
    """The tasks as one job array, started only after every job of ``after`` has completed
    (SLURM's ``afterok``; dependents of a failed job are cancelled, not left pending)."""
    if after:
        start_after(runner, after)
    with runner.batch():
        jobs = [
            runner.submit(
                ExperimentTask(
                    [*task.command, config_path],
                    [*args.overrides, *task.overrides],
                    [*task.options, "--quiet"],
                )
            )
            for task in tasks
        ]
    return jobs


def wait_for_all(jobs: Sequence, tasks: Sequence[Task]) -> int:
    """Wait for every job, print each outcome and a summary; non-zero if any failed."""
    failed = 0
    for job, task in zip(jobs, tasks, strict=True):
        try:
            job.results()  # one per node of the task (result() refuses tasks of several)
            print(f"{job.job_id}  DONE      {task.label()}")
        except Exception as error:  # submitit re-raises the task's exception here
            failed += 1
            print(f"{job.job_id}  {job.state:<9} {task.label()}: {reason(error)}")
    print(f"{len(jobs) - failed} of {len(jobs)} tasks done")
    return 1 if failed else 0


def submit(tasks: Sequence[Task], config_path: str, args: argparse.Namespace) -> int:
    """Check every task's config, submit them as one array, print the ids; with
    ``args.wait``, wait and return non-zero if any task failed."""
    try:
        configs, runner = prepare(config_path, args, tasks)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    jobs = submit_array(runner, tasks, config_path, args)
    for job, task, config in zip(jobs, tasks, configs, strict=True):
        print(f"{job.job_id}  {task.label()}  -> {config.experiment_dir}")
    print(f"Logs: {configs[0].launcher.log_dir}/<job id>/")
    return wait_for_all(jobs, tasks) if args.wait else 0


def check_partition(partition: str) -> None:
    """The partition exists on the SLURM cluster ``sinfo`` reaches (empty: its default)."""
    if not partition:
        return
    listed = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True)
    known = sorted(set(listed.stdout.split()))
    if listed.returncode == 0 and partition not in known:
        raise UserError(
            f"launcher.partition '{partition}' is no partition of this SLURM cluster (it has "
            f"{', '.join(known) or 'none'}): set launcher.partition to one of them"
        )


def reason(error: Exception) -> str:
    """The last ``SomeError: message`` line of a task's traceback (submitit wraps it)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if "Error:" in line or "Exception:" in line]
    return (named or lines or [repr(error)])[-1]
