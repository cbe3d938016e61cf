"""A Ray cluster made with Ray's own ``ray start``, stopped by the PIDs it started.

A head binds every port it opens to ports chosen free at start (so two heads can share a
machine) and keeps its files under a short temporary folder of its own. Its processes are
found by that folder or its GCS address in their command lines, plus all their descendants;
stopping sends SIGTERM to exactly those PIDs, then SIGKILL to any left, never a broad
``ray stop``. Every node of a cluster runs with the cluster's auth token (see ray_auth): a head
makes a new one unless given the file its nodes share. Used inside SLURM allocations (head on
the first node, workers on the others) and by the tests' Ray head.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from scale_lth.orchestration.ray_auth import create_token, token_environment

READY_SECONDS = 120

# Ray turns a node address of 127.0.0.1 into the machine's network address, and its daemons,
# agents and workers then listen there or on every interface. Declaring the cluster single-node
# (Ray's switch for platforms without multi-node support) keeps the node on 127.0.0.1, and
# every Ray process then listens on loopback only. For clusters on one machine alone.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free now: each is held until all are chosen (closed one by
    one, the system may hand the same port out twice, and Ray refuses two components on one)."""
    with contextlib.ExitStack() as held:
        probes = [held.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind((host, 0))
        return [probe.getsockname()[1] for probe in probes]


def ray_executable() -> str:
    """The ``ray`` command of this Python environment."""
    return str(Path(sys.executable).with_name("ray"))


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback: ``localhost``, any
    of 127.0.0.0/8 (Debian's /etc/hosts maps a machine's own name to 127.0.1.1) or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def environment(token: Path, loopback: bool) -> dict[str, str]:
    """This environment's bin folder first on PATH (Ray's workers and job entrypoints inherit
    it), no usage reporting, the cluster's auth token, and for a cluster on loopback, Ray kept
    there."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **{name: value for name, value in os.environ.items() if name != "RAY_AUTH_TOKEN"},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "RAY_USAGE_STATS_ENABLED": "0",
        **token_environment(token),
        **(LOOPBACK_ONLY if loopback else {}),
    }


@dataclass
class RayNode:
    """One ``ray start`` on this machine: a head (``address`` is its GCS) or a worker."""

    temp_dir: Path
    address: str  # host:port of the cluster's GCS
    marker: str  # a string in the command line of each process this node started
    token: Path  # the cluster's auth token file
    dashboard: str = ""  # http://host:port (heads only)
    pids: set[int] = field(default_factory=set)

    def client_environment(self) -> dict[str, str]:
        """The environment of a client of this cluster (``ray job submit``, a driver)."""
        return environment(self.token, is_loopback(self.address.rsplit(":", 1)[0]))

    def processes(self) -> list[psutil.Process]:
        """This node's processes: those naming its marker or its GCS, and their descendants."""
        found: dict[int, psutil.Process] = {}
        me = os.getpid()
        for process in psutil.process_iter(["cmdline"]):
            command = " ".join(process.info["cmdline"] or [])
            if process.pid != me and (self.marker in command or self._is_head_client(command)):
                found[process.pid] = process
                try:
                    found.update({child.pid: child for child in process.children(recursive=True)})
                except psutil.Error:
                    continue
        return list(found.values())

    def _is_head_client(self, command: str) -> bool:
        """The head's Ray Client server names neither the folder nor the host, only the port."""
        port = self.address.rsplit(":", 1)[-1]
        return (
            bool(self.dashboard)
            and "ray.util.client.server" in command
            and (f":{port} " in f"{command} ")
        )

    def record(self) -> None:
        self.pids |= {process.pid for process in self.processes()}

    def stop(self, grace_seconds: float = 10.0) -> None:
        """SIGTERM every PID this node started, SIGKILL what is left; remove its folder."""
        self.record()
        stop_processes(self.pids, grace_seconds)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _short_temp_dir(label: str) -> Path:
    """Ray's UNIX sockets live under its temp dir, so keep the path short."""
    return Path(tempfile.mkdtemp(prefix=f"ray-{label}-", dir="/tmp"))


def _run_ray_start(arguments: list[str], temp_dir: Path, token: Path, loopback: bool) -> None:
    result = subprocess.run(
        [ray_executable(), "start", *arguments, f"--temp-dir={temp_dir}"],
        env=environment(token, loopback),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(temp_dir, ignore_errors=True)
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise RuntimeError("ray start failed: " + " | ".join(tail))


def start_head(
    host: str, num_cpus: int, num_gpus: int | None = None, token: Path | None = None
) -> RayNode:
    """``ray start --head`` on ``host`` with free ports and the auth token in ``token`` (none:
    a new one in the head's private folder); returns once its GCS answers."""
    temp_dir = _short_temp_dir("head")
    token = token or create_token(temp_dir / "auth_token")
    gcs, dashboard, client, agent, agent_grpc, metrics, runtime_env = free_ports(7, host)
    arguments = [
        "--head",
        f"--node-ip-address={host}",
        f"--port={gcs}",
        f"--dashboard-host={host}",
        f"--dashboard-port={dashboard}",
        f"--ray-client-server-port={client}",
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}",
        f"--runtime-env-agent-port={runtime_env}",
        f"--num-cpus={num_cpus}",
        "--disable-usage-stats",
    ]
    if num_gpus is not None:
        arguments.append(f"--num-gpus={num_gpus}")
    _run_ray_start(arguments, temp_dir, token, is_loopback(host))
    node = RayNode(
        temp_dir, f"{host}:{gcs}", str(temp_dir), token, dashboard=f"http://{host}:{dashboard}"
    )
    node.record()
    return node


def start_worker(
    head: str, host: str, num_cpus: int, token: Path, num_gpus: int | None = None
) -> RayNode:
    """``ray start --address=head`` on this machine with the cluster's token file, retrying
    while the head comes up."""
    temp_dir = _short_temp_dir("worker")
    arguments = [f"--address={head}", f"--node-ip-address={host}", f"--num-cpus={num_cpus}"]
    if num_gpus is not None:
        arguments.append(f"--num-gpus={num_gpus}")
    deadline = time.monotonic() + READY_SECONDS
    while True:
        try:
            _run_ray_start(arguments, temp_dir, token, loopback=False)
            break
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            temp_dir = _short_temp_dir("worker")
            time.sleep(2)
    node = RayNode(temp_dir, head, str(temp_dir), token)
    node.record()
    return node


def stop_processes(pids: Iterable[int], grace_seconds: float = 10.0) -> None:
    """SIGTERM each process, SIGKILL those still there after ``grace_seconds``, and wait for
    them to be gone (a PID that is already gone is skipped)."""
    living = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            process.send_signal(signal.SIGTERM)
            living.append(process)
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(living, timeout=grace_seconds)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(alive, timeout=grace_seconds)
