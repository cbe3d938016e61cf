"""Running an experiment's job on a Ray Train worker group: one ``TorchTrainer.fit()`` for
all of it, so the ~14 s worker start is paid once per invocation, not once per run.

Ray owns the process group (gloo on CPU, NCCL on GPU). Checkpoints are persisted under
``<experiment>/ray`` and come back through ``ray.train.get_checkpoint()`` after a worker
failure (``scaling.max_failures``) or when the same experiment is started again.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import torch

from scale_lth.config import Config
from scale_lth.console import say
from scale_lth.lottery.experiment import Experiment, Job, Observer
from scale_lth.training.session import RaySession, Session


def quiet_ray_train_logs() -> None:
    """No INFO line per reported checkpoint (Ray names that logger after its file)."""
    from ray.train.v2._internal.execution import context

    for name in ("ray.train", context.__file__):
        logging.getLogger(name).setLevel(logging.WARNING)


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """What every Ray Train worker runs: the experiment's job (or, with
    ``scaling.parallelism: replicates``, its share of the replicates); the worker in charge of
    a run reports its progress."""
    config: Config = loop_config["config"]
    quiet_ray_train_logs()
    job: Job = loop_config["job"]
    session: Session = RaySession()
    if config.scaling.parallelism == "replicates":
        # Each worker trains its share of the replicates alone, as a world of one.
        mine = [r for r in job.replicates if r % session.world_size == session.rank]
        job = dataclasses.replace(job, replicates=mine)
        session = Session(device=session.device)
    torch.set_num_threads(max(1, config.scaling.cpus_per_worker))
    observers: list[Observer] = loop_config["observers"]() if session.is_chief else []
    Experiment(config, session, observers).execute(job)


def join_existing_cluster() -> None:
    """Ray 2.60 clusters require token authentication by default (the token is in
    ~/.ray/auth_token); a client must ask for it unless the user chose otherwise. Ray reads
    the mode when it is first imported, so call this before that."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")


def connect(config: Config) -> None:
    """Join ``scaling.address`` (or RAY_ADDRESS, or the cluster this process runs in), else
    start a local Ray bound to loopback."""
    address = config.scaling.address or os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        join_existing_cluster()  # before ray is imported: it reads the mode then
    import ray

    if ray.is_initialized():
        return
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


def fit(config: Config, job: Job, observers) -> None:
    """Run ``job`` on ``scaling.num_workers`` Ray Train workers and wait for it."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    connect(config)
    scaling = config.scaling
    say(
        f"Starting {scaling.num_workers} Ray Train workers "
        f"({'GPU, NCCL' if scaling.use_gpu else 'CPU, gloo'}); this takes about 15 s"
    )
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"config": config, "job": job, "observers": observers},
        scaling_config=ScalingConfig(
            num_workers=scaling.num_workers,
            use_gpu=scaling.use_gpu,
            resources_per_worker={"CPU": scaling.cpus_per_worker},
        ),
        run_config=RunConfig(
            name="ray",
            storage_path=str(config.experiment_dir.resolve()),
            failure_config=FailureConfig(max_failures=scaling.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    trainer.fit()
