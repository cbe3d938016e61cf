"""Running an experiment's run graph on Ray Train worker groups: as many groups at once as the
cluster places, each one ``TorchTrainer.fit()`` that trains the runs a shared queue hands it
(scale_lth.orchestration.run_queue), so the ~14 s worker start is paid once per group, not once
per run, and ready runs never wait for a free cluster.

Ray owns the process group (gloo on CPU, NCCL on GPU). Resumable checkpoints live in each
run's folder (scale_lth.training.state) and are never reported to Ray Train, whose storage
(``<experiment>/ray``) holds only its own run state: when Ray Train restarts a failed worker
group (``scaling.max_failures``), or the experiment is started again, the loop finds them in
the run folders and continues. The workers get plain step counts (scale_lth.lottery.steps),
counted once on the driver.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from scale_lth.config import Config
from scale_lth.console import say
from scale_lth.data.staging import stage
from scale_lth.errors import UserError, WorkerError, one_line
from scale_lth.lottery.graph import RunGraph
from scale_lth.lottery.runner import Runner
from scale_lth.lottery.steps import Steps
from scale_lth.orchestration.failures import FailureFile
from scale_lth.orchestration.ray_auth import create_token, require_client_token, use_token
from scale_lth.orchestration.ray_cluster import LOOPBACK_ONLY, free_port, is_loopback
from scale_lth.orchestration.run_queue import RunQueue, describe_status, turns
from scale_lth.progress import Bar, BarFactory
from scale_lth.results import Observer
from scale_lth.tracking.uri import CREDENTIALS
from scale_lth.training.session import Place, Session


def quiet_ray_train_logs() -> None:
    """Ray Train's INFO lines stay out of the workers' logs (Ray names one logger after its
    file)."""
    from ray.train.v2._internal.execution import context

    for name in ("ray.train", context.__file__):
        logging.getLogger(name).setLevel(logging.WARNING)


# What the workers print reaches a file (a SLURM log, CI) as they printed it: Ray's driver then
# adds no "(RayTrainWorker pid=...)" prefix, no colour codes, and folds no repeated lines into
# "[repeated Nx]" (read when ray is imported).
PLAIN_WORKER_LINES = {
    "RAY_DISABLE_WORKER_LOG_PREFIX": "1",
    "RAY_COLOR_PREFIX": "0",
    "RAY_DEDUP_LOGS": "0",
}
# Shares of a GPU add up in floating point (ten workers of 0.1 make 0.9999999999999999).
SHARE_ROUNDING = 1e-9


def ray_session(data: Path) -> Session:
    """This Ray Train worker's rank, world size and device (inside ``TorchTrainer``), and the
    host, Ray node address and data folder (``data`` for this one) of every rank of its
    group."""
    import ray.train
    import ray.train.torch
    import ray.util

    context = ray.train.get_context()
    rank, size = context.get_world_rank(), context.get_world_size()
    here = Place.here(ray.util.get_node_ip_address(), str(data))
    places = [here] * size
    if size > 1:
        dist.all_gather_object(places, here)
    return Session(rank, size, ray.train.torch.get_device(), tuple(places))


def ray_progress_bar(description: str, total: int) -> Bar:
    """A progress bar drawn by the driver for a worker's run (Ray's tqdm)."""
    from ray.experimental.tqdm_ray import tqdm

    return tqdm(desc=description, total=total, unit="it")


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """What every Ray Train worker runs: the runs the queue hands its slot, until none is left.
    Under ``scaling.parallelism: ddp`` the worker group is one slot; under ``runs`` each worker
    is a slot of its own and trains whole runs alone, as a world of one. The worker in charge of
    a run reports its progress."""
    import ray

    config: Config = loop_config["config"]
    failure: FailureFile = loop_config["failure"]
    if failure.recorded():
        return  # an earlier attempt met an error that would only happen again
    quiet_ray_train_logs()
    session = ray_session(stage(config.data_dir, config.data.stage))
    slot = loop_config["group"]
    if config.scaling.parallelism == "runs":
        slot = f"{slot}/{session.rank}"
        session = Session(device=session.device, places=(session.places[session.rank],))
    torch.set_num_threads(max(1, config.scaling.cpus_per_worker))
    queue = loop_config["queue"]
    try:
        bars = ray_progress_bar if loop_config["bars"] else None
        observers: list[Observer] = loop_config["observers"](bars) if session.is_chief else []
        runner = Runner(config, session, loop_config["steps"], observers)
        runner.train(turns(lambda *turn: ray.get(queue.next.remote(*turn)), slot))
    except Exception as error:
        if failure.record(error, session.rank):
            queue.stop.remote()  # it would recur: every waiting slot leaves now
        raise


def connect(config: Config) -> None:
    """Join ``scaling.address`` (or RAY_ADDRESS, or the cluster this process runs in) with its
    auth token, else start a local Ray on loopback with a new token of its own."""
    address = cluster_address(config)
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        return
    if address is None:  # before ray is imported: it reads both then
        _use_local_token()
    else:
        require_client_token(address)
    if address is None or is_loopback(_host(address)):
        os.environ.update(LOOPBACK_ONLY)  # this driver's own Ray endpoints too
    if not sys.stdout.isatty():
        os.environ.update(PLAIN_WORKER_LINES)
    import ray

    say(f"Connecting to Ray at {address}" if address else "Starting a local Ray on 127.0.0.1")
    if address is None:
        _start_local(ray)
    else:
        passed = job_environment(address)
        ray.init(
            address=address,
            logging_level=logging.WARNING,
            log_to_driver=True,
            runtime_env={"env_vars": passed} if passed else None,
        )


def cluster_address(config: Config) -> str | None:
    """The Ray cluster to join: ``scaling.address``, else RAY_ADDRESS (set inside a Ray job),
    else None: a local Ray of the driver's own."""
    return config.scaling.address or os.environ.get("RAY_ADDRESS") or None


def job_environment(address: str) -> dict[str, str]:
    """What the job's processes on the cluster get: MLflow's credentials, never written to a
    file of the experiment (scale_lth.tracking.uri.credentials_moved); and the cluster's GCS
    address, which Ray Train's placement-group cleaner (an actor on the head) otherwise looks
    for among the Ray instances of its machine, failing ("Found multiple active Ray
    instances") where another runs there. A Ray Client address (``ray://``) or ``auto`` is
    not a GCS address: the cleaner keeps looking for itself."""
    passed = {name: os.environ[name] for name in CREDENTIALS if name in os.environ}
    if "://" not in address and address != "auto":
        passed["RAY_ADDRESS"] = address
    return passed


def _host(address: str) -> str:
    return address.split("://")[-1].rsplit(":", 1)[0]


def _start_local(ray) -> None:
    """A Ray of this process's own on loopback (never a `ray start` cluster of the machine),
    its GCS on a port chosen here and named in RAY_ADDRESS for the processes it starts (they
    inherit this moment's environment): one of them looking for its cluster finds this one,
    where among the Ray instances of the machine it would fail ("Found multiple active Ray
    instances") if another ran there, a second lottery's for one.

    It ends with the driver, so it starts nothing that outlives a driver or watches a cluster:
    no dashboard (its state API serves Ray Train's placement-group cleaner, left out here by
    scale_lth.orchestration.trainer) and no preemption watcher (it polls the nodes for a cloud
    provider's notice of taking them away)."""
    port = free_port("127.0.0.1")
    named = {
        "RAY_ADDRESS": f"127.0.0.1:{port}",
        "RAY_GCS_SERVER_PORT": str(port),
        "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    }
    before = {name: os.environ.get(name) for name in named}
    os.environ.update(named)
    try:
        ray.init(
            address="local",
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=True,
            _node_ip_address="127.0.0.1",
        )
    finally:  # this process keeps its own (a later connect() reads RAY_ADDRESS)
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _use_local_token() -> None:
    """A new token for the local Ray this process starts, in a private folder removed at exit
    (after Ray's own shutdown, which was registered later)."""
    folder = Path(tempfile.mkdtemp(prefix="scale-lth-ray-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    use_token(create_token(folder / "auth_token"))


def fit(
    config: Config,
    graph: RunGraph,
    steps: Steps,
    observers: Callable[[BarFactory | None], list[Observer]],
    bars: bool,
) -> None:
    """Train the runs of ``graph`` on as many Ray Train worker groups at once as the cluster
    can place (or ``scaling.concurrent_runs``), each taking ready runs from one queue; wait for
    all of them. The worker in charge of a run reports to ``observers(bars)``, ``bars`` making
    a progress bar per run (drawn by the driver) where asked, else none."""
    connect(config)  # first: it sets the auth environment that importing ray reads
    import ray

    resources = ray.cluster_resources()
    where = f"at {config.scaling.address or os.environ.get('RAY_ADDRESS', 'this address')}"
    groups = worker_groups(config, resources.get("CPU", 0), resources.get("GPU", 0), where)
    groups = min(groups, len(graph))
    scaling = config.scaling
    say(
        f"Starting {groups} x {scaling.num_workers} Ray Train workers "
        f"({'GPU, NCCL' if scaling.use_gpu else 'CPU, gloo'}); this takes about 15 s"
    )
    queue = run_queue(graph, config)
    failure = FailureFile(config.experiment_dir / f".worker_failure-{uuid.uuid4().hex}.json")
    shared = {
        "config": config,
        "steps": steps,
        "observers": observers,
        "bars": bars,
        "failure": failure,
    }
    pool = ThreadPoolExecutor(groups)
    try:
        running = [
            pool.submit(group_trainer(config, {**shared, "group": str(i), "queue": queue}).fit)
            for i in range(groups)
        ]
        failed = _watch(running, queue, failure, len(graph), scaling.max_failures + 1)
    except BaseException:  # Ctrl-C or an error of Ray's own: the groups end with the driver
        ray.shutdown()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if failed or failure.recorded():
        ray.shutdown()  # no forwarded worker log may print after the error's one line
        failure.raise_recorded()
        raise WorkerError(failed)


def run_queue(graph: RunGraph, config: Config):
    """The run queue's actor, on the driver's own node: wherever else it ran, losing that node
    would lose the queue and end the experiment, where Ray Train would restart the workers."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    actor = ray.remote(num_cpus=0)(RunQueue).options(scheduling_strategy=here)
    return actor.remote(graph, config.experiment_dir)


def group_trainer(config: Config, loop_config: dict[str, Any]):
    """One worker group's ``TorchTrainer``. Every retry is bounded by ``scaling.max_failures``:
    a group whose workers or nodes failed, and a group that cannot start (Ray Train waits
    RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S, 60 s by default, for room to place it, and by
    default retries that without limit: a cluster that lost a node for good would wait for
    ever)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.v2.api.config import FailureConfig  # ray.train's, typed as Ray Train v2's

    from scale_lth.orchestration.process_group import NodeAddressTorchConfig
    from scale_lth.orchestration.trainer import LotteryTrainer

    scaling = config.scaling
    resources: dict[str, float] = {"CPU": scaling.cpus_per_worker}
    if scaling.use_gpu:
        resources["GPU"] = scaling.gpus_per_worker
    return LotteryTrainer(
        train_loop_per_worker,
        own_ray=cluster_address(config) is None,
        train_loop_config=loop_config,
        # under `runs` each worker trains alone and its group's process group carries nothing:
        # gloo, since NCCL refuses two ranks on one GPU (workers sharing one, gpus_per_worker)
        torch_config=NodeAddressTorchConfig(
            backend="gloo" if scaling.parallelism == "runs" else None
        ),
        scaling_config=ScalingConfig(
            num_workers=scaling.num_workers,
            use_gpu=scaling.use_gpu,
            resources_per_worker=resources,
            placement_strategy=scaling.placement.upper(),  # Ray's PACK or SPREAD
        ),
        run_config=RunConfig(
            name=f"group{loop_config['group']}",
            storage_path=str((config.experiment_dir / "ray").resolve()),
            failure_config=FailureConfig(
                max_failures=scaling.max_failures, controller_failure_limit=scaling.max_failures
            ),
        ),
    )


def _watch(
    running: list[Future], queue, failure: FailureFile, total: int, attempts: int
) -> str | None:
    """Say how many runs are running, ready and waiting whenever that changes, until every
    group has ended; a group that fails for good, or records an error that would recur, stops
    the queue (the others end after their run). Returns the first such failure's line."""
    import ray
    from ray.train import TrainingFailedError

    failed, said = None, ""
    while True:
        finished = wait(running, timeout=1.0).done
        if failure.recorded():  # a group met an error that would recur: no slot waits on
            queue.stop.remote()
        for future in finished:
            error = future.exception()
            if error is not None and failed is None:
                queue.stop.remote()
                if not isinstance(error, TrainingFailedError):
                    raise error
                failed = f"the workers failed {attempts} times: {_root(error)}"
        status = ray.get(queue.status.remote())
        holders = ray.get(queue.holders.remote()) if status["elsewhere"] else []
        line = describe_status(status, total, holders)
        if line != said:
            say(line)
            said = line
        if len(finished) == len(running):
            return failed


def worker_groups(config: Config, cpus: float, gpus: float, where: str) -> int:
    """How many worker groups train at once: ``scaling.concurrent_runs``, else as many as the
    cluster can place (one under ``parallelism: runs``, whose workers are the slots). More than
    the cluster can ever place is refused, not waited for."""
    scaling = config.scaling
    wanted_cpus = scaling.num_workers * scaling.cpus_per_worker
    wanted_gpus = scaling.num_workers * scaling.gpus_per_worker
    if wanted_cpus > cpus:
        raise UserError(
            f"scaling.num_workers {scaling.num_workers} x scaling.cpus_per_worker "
            f"{scaling.cpus_per_worker} needs {wanted_cpus} CPUs, the Ray cluster {where} has "
            f"{cpus:g}: lower them or use a larger cluster"
        )
    if scaling.use_gpu and wanted_gpus > gpus + SHARE_ROUNDING:
        raise UserError(
            f"scaling.num_workers {scaling.num_workers} with scaling.use_gpu needs "
            f"{wanted_gpus:g} GPUs, the Ray cluster {where} has {gpus:g}: lower "
            "scaling.num_workers or use a larger cluster"
        )
    if scaling.parallelism == "runs":
        return 1
    fits = int(cpus // wanted_cpus)
    if scaling.use_gpu:
        fits = min(fits, int(gpus / wanted_gpus + SHARE_ROUNDING))
    if scaling.concurrent_runs > fits:
        raise UserError(
            f"scaling.concurrent_runs {scaling.concurrent_runs} worker groups of "
            f"{scaling.num_workers} workers do not fit in the Ray cluster {where} (room for "
            f"{fits}): lower it, or set 0 for as many as fit"
        )
    return scaling.concurrent_runs or fits


def _root(error: BaseException) -> str:
    """The innermost error's line (Ray wraps a worker's exception in its own)."""
    while error.__cause__ is not None:
        error = error.__cause__
    return one_line(error)
