"""Running an experiment's job on a Ray Train worker group: one ``TorchTrainer.fit()`` for
all of it, so the ~14 s worker start is paid once per invocation, not once per run.

Ray owns the process group (gloo on CPU, NCCL on GPU). Resumable checkpoints live in each
run's folder (scale_lth.training.state) and are never reported to Ray Train, whose storage
(``<experiment>/ray``) holds only its own run state: when Ray Train restarts a failed worker
group (``scaling.max_failures``), or the experiment is started again, the loop finds them in
the run folders and continues. The workers get plain step counts (scale_lth.lottery.steps),
counted once on the driver.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import torch

from scale_lth.config import Config
from scale_lth.console import say
from scale_lth.errors import UserError, WorkerError
from scale_lth.lottery.job import Job
from scale_lth.lottery.runner import Runner
from scale_lth.lottery.steps import Steps
from scale_lth.orchestration.failures import FailureFile, one_line
from scale_lth.orchestration.ray_auth import create_token, require_client_token, use_token
from scale_lth.orchestration.ray_cluster import LOOPBACK_ONLY, is_loopback
from scale_lth.results import Observer
from scale_lth.training.session import RaySession, Session


def quiet_ray_train_logs() -> None:
    """Ray Train's INFO lines stay out of the workers' logs (Ray names one logger after its
    file)."""
    from ray.train.v2._internal.execution import context

    for name in ("ray.train", context.__file__):
        logging.getLogger(name).setLevel(logging.WARNING)


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """What every Ray Train worker runs: the experiment's job (or, with
    ``scaling.parallelism: replicates``, its share of the replicates); the worker in charge of
    a run reports its progress."""
    config: Config = loop_config["config"]
    failure: FailureFile = loop_config["failure"]
    if failure.recorded():
        return  # an earlier attempt met an error that would only happen again
    quiet_ray_train_logs()
    job: Job = loop_config["job"]
    session: Session = RaySession()
    if config.scaling.parallelism == "replicates":
        # Each worker trains its share of the replicates alone, as a world of one.
        mine = [r for r in job.replicates if r % session.world_size == session.rank]
        job = dataclasses.replace(job, replicates=mine)
        session = Session(device=session.device)
    torch.set_num_threads(max(1, config.scaling.cpus_per_worker))
    try:
        observers: list[Observer] = loop_config["observers"]() if session.is_chief else []
        Runner(config, session, loop_config["steps"], observers).execute(job)
    except Exception as error:
        failure.record(error, session.rank)
        raise


def connect(config: Config) -> None:
    """Join ``scaling.address`` (or RAY_ADDRESS, or the cluster this process runs in) with its
    auth token, else start a local Ray on loopback with a new token of its own."""
    address = config.scaling.address or os.environ.get("RAY_ADDRESS") or None
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        return
    if address is None:  # before ray is imported: it reads both then
        _use_local_token()
    else:
        require_client_token(address)
    if address is None or is_loopback(_host(address)):
        os.environ.update(LOOPBACK_ONLY)  # this driver's own Ray endpoints too
    import ray

    say(f"Connecting to Ray at {address}" if address else "Starting a local Ray on 127.0.0.1")
    if address is None:
        # The dashboard serves the state API Ray Train's placement-group cleaner polls.
        ray.init(
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            logging_level=logging.WARNING,
            log_to_driver=True,
            _node_ip_address="127.0.0.1",
        )
    else:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)


def _host(address: str) -> str:
    return address.split("://")[-1].rsplit(":", 1)[0]


def _use_local_token() -> None:
    """A new token for the local Ray this process starts, in a private folder removed at exit
    (after Ray's own shutdown, which was registered later)."""
    folder = Path(tempfile.mkdtemp(prefix="scale-lth-ray-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    use_token(create_token(folder / "auth_token"))


def fit(config: Config, job: Job, steps: Steps, observers) -> None:
    """Run ``job`` on ``scaling.num_workers`` Ray Train workers and wait for it."""
    connect(config)  # first: it sets the auth environment that importing ray reads
    import ray
    from ray.train import (
        FailureConfig,
        RunConfig,
        ScalingConfig,
        TrainingFailedError,
    )
    from ray.train.torch import TorchTrainer

    resources = ray.cluster_resources()
    where = f"at {config.scaling.address or os.environ.get('RAY_ADDRESS', 'this address')}"
    check_placement(config, resources.get("CPU", 0), resources.get("GPU", 0), where)
    scaling = config.scaling
    say(
        f"Starting {scaling.num_workers} Ray Train workers "
        f"({'GPU, NCCL' if scaling.use_gpu else 'CPU, gloo'}); this takes about 15 s"
    )
    failure = FailureFile(config.experiment_dir / f".worker_failure-{uuid.uuid4().hex}.json")
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "config": config,
            "job": job,
            "steps": steps,
            "observers": observers,
            "failure": failure,
        },
        scaling_config=ScalingConfig(
            num_workers=scaling.num_workers,
            use_gpu=scaling.use_gpu,
            resources_per_worker={"CPU": scaling.cpus_per_worker},
        ),
        run_config=RunConfig(
            name="ray",
            storage_path=str(config.experiment_dir.resolve()),
            failure_config=FailureConfig(max_failures=scaling.max_failures),
        ),
    )
    try:
        trainer.fit()
        failed = None
    except TrainingFailedError as error:
        failed = f"the workers failed {scaling.max_failures + 1} times: {_root(error)}"
    if failed or failure.recorded():
        ray.shutdown()  # no forwarded worker log may print after the error's one line
        failure.raise_recorded()
        raise WorkerError(failed)


def check_placement(config: Config, cpus: float, gpus: float, where: str) -> None:
    """More workers (CPUs, GPUs) than the cluster has can never be placed: refuse, not wait."""
    scaling = config.scaling
    wanted_cpus = scaling.num_workers * scaling.cpus_per_worker
    if wanted_cpus > cpus:
        raise UserError(
            f"scaling.num_workers {scaling.num_workers} x scaling.cpus_per_worker "
            f"{scaling.cpus_per_worker} needs {wanted_cpus} CPUs, the Ray cluster {where} has "
            f"{cpus:g}: lower them or use a larger cluster"
        )
    if scaling.use_gpu and scaling.num_workers > gpus:
        raise UserError(
            f"scaling.num_workers {scaling.num_workers} with scaling.use_gpu needs "
            f"{scaling.num_workers} GPUs, the Ray cluster {where} has {gpus:g}: lower "
            "scaling.num_workers or use a larger cluster"
        )


def _root(error: BaseException) -> str:
    """The innermost error's line (Ray wraps a worker's exception in its own)."""
    while error.__cause__ is not None:
        error = error.__cause__
    return one_line(error)
