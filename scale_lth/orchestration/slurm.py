"""Experiments as SLURM jobs via submitit, with a Ray cluster inside each allocation.

One task runs per node. The first node's task starts a Ray head (``ray start --head``), waits
for the other nodes' workers (``ray start --address``) to join, runs the experiment's driver
against that cluster (so Ray Train spreads its workers over every GPU of the allocation), then
stops the cluster; the other tasks keep their Ray worker up until the driver is done. A task
that is preempted, times out or is requeued is submitted again by submitit and continues the
experiment from what is on disk (finished runs and each run's last checkpoint). Ray processes
are stopped by the PIDs they started, including those a killed earlier attempt left behind.
The cluster's auth token is made new by the first node for each attempt, in the job's folder
(shared by the nodes, mode 0600), and every node and the driver use it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import submitit

from scale_lth.config import Config
from scale_lth.console import say
from scale_lth.errors import UserError
from scale_lth.orchestration.ray_auth import create_token, use_token
from scale_lth.orchestration.ray_cluster import (
    LOOPBACK_ONLY,
    RayNode,
    is_loopback,
    start_head,
    start_worker,
)
from scale_lth.storage import atomic_write, atomic_write_json

JOIN_SECONDS = 300
# A follower whose head has not answered for this long leaves: its job's first node has ended
# (killed, or lost with its machine), and nothing will tell it so otherwise.
HEAD_LOST_SECONDS = 60
REQUEUE = {"requeue": True}  # a preempted or requeued job comes back and resumes


def executor(config: Config, cluster: str | None = None) -> submitit.AutoExecutor:
    """A submitit executor with the config's launcher section as cluster options."""
    launcher = config.launcher
    chosen = cluster or launcher.cluster
    folder = Path(launcher.log_dir).resolve() / "%j"
    made = submitit.AutoExecutor(folder=folder, cluster=None if chosen == "slurm" else chosen)
    options: dict[str, object] = {
        "timeout_min": launcher.timeout_min,
        "nodes": launcher.nodes,
        "tasks_per_node": 1,
        "cpus_per_task": launcher.cpus_per_task,
        "name": config.name,
    }
    if launcher.gpus_per_node:
        options["gpus_per_node"] = launcher.gpus_per_node
    if launcher.mem_gb:
        options["mem_gb"] = launcher.mem_gb
    slurm_only = {
        "slurm_partition": launcher.partition,
        "slurm_account": launcher.account,
        "slurm_qos": launcher.qos,
        "slurm_constraint": launcher.constraint,
    }
    if made.cluster == "slurm":
        options.update({key: value for key, value in slurm_only.items() if value})
        options["slurm_additional_parameters"] = dict(REQUEUE)
    made.update_parameters(**options)
    return made


def start_after(made: submitit.AutoExecutor, jobs: Iterable[submitit.Job]) -> None:
    """The jobs ``made`` submits next start only once every one of ``jobs`` has completed
    (``afterok``); if one of them fails they are cancelled, not left pending for ever."""
    ids = ":".join(job.job_id for job in jobs)
    made.update_parameters(
        slurm_additional_parameters={
            **REQUEUE,
            "dependency": f"afterok:{ids}",
            "kill_on_invalid_dep": "yes",
        }
    )


@dataclass
class ExperimentTask(submitit.helpers.Checkpointable):
    """``scale-lth COMMAND OVERRIDES OPTIONS`` inside an allocation (one task per node)."""

    command: list[str]  # e.g. ["lottery", "configs/smoke.yaml"] or ["branch", "snip", "x.yaml"]
    overrides: list[str]  # key.sub=value
    options: list[str]  # e.g. ["--levels", "1-5", "--quiet"]

    @property
    def arguments(self) -> list[str]:
        return [*self.command, *self.overrides, *self.options]

    def __call__(self) -> dict:
        environment = submitit.JobEnvironment()
        attempt = int(os.environ.get("SLURM_RESTART_COUNT", "0"))  # set once requeued
        files = AllocationFiles(
            Path(str(environment.paths.folder)), str(environment.job_id), attempt
        )
        cpus = int(os.environ.get("SLURM_CPUS_PER_TASK", len(os.sched_getaffinity(0))))
        gpus = _gpus_on_this_node()
        nodes = len(environment.hostnames)
        # A one-node allocation keeps Ray on loopback; several nodes need their addresses.
        host = "127.0.0.1" if nodes == 1 else node_address(environment.hostnames, environment.node)
        files.stop_leftovers(environment.node)
        if environment.node == 0:
            return self._lead(files, host, cpus, gpus, nodes)
        self._follow(files, host, cpus, gpus, environment.node)
        return {}

    def _lead(
        self, files: AllocationFiles, host: str, cpus: int, gpus: int | None, nodes: int
    ) -> dict[str, object]:
        from scale_lth.cli import run

        token = create_token(files.token)
        use_token(token)  # this process is the driver: a client of the allocation's cluster
        if is_loopback(host):
            os.environ.update(LOOPBACK_ONLY)  # before ray is imported (wait_for_nodes)
        head = start_head(host, cpus, gpus, token=token)
        files.remember(0, head)
        stop_on_sigterm(head)
        say(f"Ray head at {head.address} (dashboard {head.dashboard}); waiting for {nodes} nodes")
        try:
            files.announce(head.address)
            wait_for_nodes(head.address, nodes)
            stop_on_sigterm(head)  # again: ray.init replaced the handler with a sys.exit
            address = f"scaling.address={head.address}"
            run([*self.command, *self.overrides, address, *self.options])
        finally:
            files.finish()
            _disconnect()
            head.stop(grace_seconds=2)  # within SLURM's KillWait after a SIGTERM
        return {"arguments": self.arguments, "nodes": nodes, "head": head.address}

    def _follow(
        self, files: AllocationFiles, host: str, cpus: int, gpus: int | None, node: int
    ) -> None:
        head = files.head_address()  # announced after the token was written
        worker = start_worker(head, host, cpus, files.token, gpus)
        files.remember(node, worker)
        stop_on_sigterm(worker)
        try:
            files.wait_until_finished(head)
        finally:
            worker.stop()

    def checkpoint(self, *args: object, **kwargs: object) -> submitit.helpers.DelayedSubmission:
        """Preempted or out of time: submit the same task again; it resumes from disk."""
        return submitit.helpers.DelayedSubmission(
            ExperimentTask(self.command, self.overrides, self.options)
        )


def node_address(hostnames: Sequence[str], node: int) -> str:
    """The address the other nodes of the allocation reach node ``node`` at: its name's, unless
    that is loopback (as where /etc/hosts maps a machine's own name to 127.0.1.1, Debian's
    default); then that of its interface toward the next node (the route a UDP socket picks;
    nothing is sent)."""
    own = socket.gethostbyname(hostnames[node])
    if not is_loopback(own):
        return own
    peer_name = hostnames[(node + 1) % len(hostnames)]
    peer = socket.gethostbyname(peer_name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((peer, 9))
        address = probe.getsockname()[0]
    if is_loopback(address):
        raise UserError(
            f"the nodes {hostnames[node]} and {peer_name} both resolve to loopback on "
            f"{hostnames[node]}: map each node's name to its cluster address (/etc/hosts or DNS)"
        )
    return address


@dataclass(frozen=True)
class AllocationFiles:
    """Small files in the job's log folder (shared by its nodes) that coordinate them. A
    requeued job keeps its id, so the files of one attempt (the head's address and token, the
    end of its driver) carry the attempt's number: a node of a later attempt never reads those
    of a dead one. The Ray processes each node started are kept per job, for the next attempt
    to stop."""

    folder: Path
    job_id: str
    attempt: int = 0  # SLURM's restart count

    def _path(self, name: str) -> Path:
        return self.folder / f"{self.job_id}_{name}"

    def _attempt_path(self, name: str) -> Path:
        return self._path(f"{self.attempt}_{name}")

    @property
    def token(self) -> Path:
        """The Ray cluster's auth token."""
        return self._attempt_path("ray_token")

    def announce(self, address: str) -> None:
        atomic_write(self._attempt_path("ray_head"), address)

    def head_address(self) -> str:
        path = self._attempt_path("ray_head")
        deadline = time.monotonic() + JOIN_SECONDS
        while not path.is_file():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Ray head announced in {path} within {JOIN_SECONDS} s")
            time.sleep(1)
        return path.read_text().strip()

    def finish(self) -> None:
        self._attempt_path("ray_done").touch()

    def wait_until_finished(self, head: str, lost_after: float = HEAD_LOST_SECONDS) -> None:
        """Until the driver on the first node is done; or, if the head at ``head`` stops
        answering for ``lost_after`` seconds, end with that in one line."""
        answered = time.monotonic()
        while not self._attempt_path("ray_done").is_file():
            if _answers(head):
                answered = time.monotonic()
            elif time.monotonic() - answered > lost_after:
                raise RuntimeError(
                    f"the Ray head at {head} has not answered for {lost_after:g} s: the job's "
                    "first node has ended, so this node stops too"
                )
            time.sleep(2)

    def remember(self, node: int, ray: RayNode) -> None:
        """This node's Ray, for a later attempt to clean up after: the host, each process's PID
        and start time, and the marker its command lines hold."""
        started = {pid: _start_time(pid) for pid in sorted(ray.pids)}
        record = {
            "host": socket.gethostname(),
            "marker": ray.marker,
            "processes": [[pid, time] for pid, time in started.items() if time is not None],
        }
        atomic_write_json(self._path(f"ray_pids_{node}.json"), record)

    def stop_leftovers(self, node: int) -> None:
        """Stop the Ray processes an earlier, killed attempt of this job left on this node, and
        clear the coordination files of that attempt. Only processes that attempt started
        here: the same host, and each PID with its recorded start time (a PID the system has
        given to another process since, another job's ``raylet`` say, is left alone), or a
        command line naming the attempt's own Ray folder. An attempt that ran on another host
        left nothing this node can stop."""
        path = self._path(f"ray_pids_{node}.json")
        if path.is_file():
            record = json.loads(path.read_text())
            if record.get("host") == socket.gethostname():
                same = {
                    pid for pid, time in record.get("processes", []) if _start_time(pid) == time
                }
                marker = record["marker"]
                RayNode(Path(marker), "", marker, self.token, pids=same).stop(grace_seconds=3)
            path.unlink()
        if node == 0:
            for earlier in range(self.attempt):
                for name in ("ray_head", "ray_done", "ray_token"):
                    self._path(f"{earlier}_{name}").unlink(missing_ok=True)


def _start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch, as the system records it), or
    None if there is none: with the PID, it names one process for good."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _answers(address: str) -> bool:
    """Whether something accepts a TCP connection at ``address`` (host:port)."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return True
    except OSError:
        return False


def stop_on_sigterm(ray: RayNode) -> None:
    """On SIGTERM (scancel, scontrol requeue, the end of the time limit) stop this node's Ray
    before SLURM's SIGKILL: its daemons are not children SLURM would kill."""

    def handler(signum, frame):
        ray.stop(grace_seconds=2)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def wait_for_nodes(address: str, count: int) -> None:
    import ray

    deadline = time.monotonic() + JOIN_SECONDS
    ray.init(address=address, logging_level=logging.WARNING)
    while len([node for node in ray.nodes() if node["Alive"]]) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only some of the {count} nodes joined the Ray cluster")
        time.sleep(1)


def _disconnect() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _gpus_on_this_node() -> int | None:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return len(visible.split(",")) if visible else None
