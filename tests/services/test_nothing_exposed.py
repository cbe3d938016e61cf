"""Nothing exposed: every service the test harness starts (SLURM with its database, an MLflow
server, a Ray head) and everything a local lottery starts (Ray's daemons, agents and workers)
listens on loopback only, on a machine that has other addresses too.

One known exception, documented in the README: torch's process-group store (a TCPStore that
rank 0 of a DDP group hosts for the group's rendezvous) listens on every interface, and torch
2.14 has no setting for its address. The test lets through one such socket, of a training
worker, and only after a TCPStore client's handshake with it succeeds."""

import ipaddress
import socket
import time

import psutil
import pytest

from scale_lth.results import Layout, RunKey
from tests.conftest import CONFIGS
from tests.processes import session_members, start, stop_session

pytestmark = [pytest.mark.integration]


def listening(processes) -> list[tuple[str, int, str]]:
    """(address, port, command) of every TCP/UDP socket these processes listen on."""
    pids = {process.pid: process for process in processes}
    found = []
    for connection in psutil.net_connections(kind="inet"):
        udp_bound = connection.type == socket.SOCK_DGRAM and not connection.raddr
        listens = connection.status == psutil.CONN_LISTEN or udp_bound
        if connection.pid in pids and listens and connection.laddr:
            try:
                name = command(pids[connection.pid].cmdline())
            except psutil.Error:
                name = "?"
            found.append((connection.laddr.ip, connection.laddr.port, name))
    return found


def command(cmdline: list[str]) -> str:
    """A process's command line shortened for messages, its program without the folder (which
    depends on where the checkout lies) so that the program's name is always in it."""
    program, *arguments = cmdline or ["?"]
    return " ".join([program.rsplit("/", 1)[-1], *arguments])[:80]


def loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def exposed(sockets) -> list[tuple[str, int, str]]:
    return [entry for entry in sockets if not loopback(entry[0])]


def torch_store(port: int) -> bool:
    """Whether a torch TCPStore answers on ``port`` (a client's handshake succeeds)."""
    import datetime

    import torch.distributed as dist

    try:
        client = dist.TCPStore(
            "127.0.0.1", port, is_master=False, timeout=datetime.timedelta(seconds=5)
        )
        client.num_keys()
    except Exception:  # not a TCPStore: whatever else it is, it is exposed
        return False
    return True


def test_the_harness_services_listen_on_loopback_only(slurm_cluster, mlflow_server, ray_head):
    processes = [psutil.Process(pid) for pid in slurm_cluster.pids.values()]
    processes += session_members(mlflow_server.process.pid) + ray_head.processes()
    sockets = listening(processes)
    names = " ".join(name for _, _, name in sockets)
    for daemon in ("slurmctld", "slurmd", "slurmdbd", "mariadbd", "gcs_server", "raylet"):
        assert daemon in names, f"{daemon} listens nowhere?"
    assert mlflow_server.port in {port for _, port, _ in sockets}
    assert exposed(sockets) == []


def test_a_local_lottery_listens_on_loopback_only(tmp_path, digits_dir):
    process = start(
        tmp_path, "lottery", str(CONFIGS / "smoke.yaml"), f"data.path={digits_dir}",
        "training.duration=3000it", "training.checkpoint_every=20it", "--quiet",
    )  # fmt: skip
    checkpoint = Layout(tmp_path / "results").root  # the experiment folder is found below
    try:
        deadline = time.monotonic() + 300
        while not list(checkpoint.glob(f"*/{RunKey(0, 0).run_id}/resume.json")):
            if process.poll() is not None or time.monotonic() > deadline:  # a hang guard
                raise TimeoutError("the lottery's workers never checkpointed")
            time.sleep(0.1)
        sockets = listening(session_members(process.pid))
        stores = [
            entry
            for entry in exposed(sockets)
            if "RayTrainWorker" in entry[2] and torch_store(entry[1])
        ]
    finally:
        stop_session(process)
    names = " ".join(name for _, _, name in sockets)
    for part in ("gcs_server", "raylet", "RayTrainWorker", "DashboardAgent"):
        assert part in names, f"{part} listens nowhere?"
    assert len(stores) <= 1  # the one DDP group's store, rank 0's: the known exception
    assert [entry for entry in exposed(sockets) if entry not in stores] == []
