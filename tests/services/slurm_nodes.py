"""A real SLURM cluster of several nodes on namespaced nodes (tests.services.nodes): munge,
MariaDB, slurmdbd and slurmctld on the host (the controller machine: slurmctld bound to
``CONTROLLER_ADDRESS`` on the nodes' bridge, the others on loopback), and one ``slurmd`` on each
node, run there (its network, hostname and hosts file), with its own spool folder and pid file.
Jobs' tasks then run on the nodes SLURM gives them, in those nodes' namespaces, as on a real
cluster; clients on the host (submitit, sacct) reach the controller on the bridge."""

from __future__ import annotations

import re
from pathlib import Path

from tests.services.nodes import CONTROLLER, CONTROLLER_ADDRESS, Nodes
from tests.services.slurm import SlurmCluster


class NamespacedSlurm(SlurmCluster):
    """``nodes`` (made with ``controller=True``, hostnames of their own) as SLURM's nodes, each
    declared with ``cpus`` CPUs."""

    controller = (CONTROLLER, CONTROLLER_ADDRESS)

    def __init__(self, folder: Path, nodes: Nodes, cpus: int) -> None:
        if not nodes.controller or not nodes.own_names:
            raise ValueError("SLURM's nodes need the controller's address and names of their own")
        super().__init__(folder)
        self.nodes = list(nodes)
        self.cpus = cpus
        self.node = re.sub(r"\bCPUs=\d+", f"CPUs={cpus}", self.node)
        # one socket and one core per CPU: SLURM checks the line against what slurmd finds
        self.node = re.sub(r"\b(Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=\d+ ?", "",
                           self.node).strip()  # fmt: skip

    @property
    def spool(self) -> Path:
        return self.folder / "spool" / "%n"  # %n: each slurmd's node name

    def node_lines(self) -> list[str]:
        described = self.node.split(" ", 2)[2]  # CPUs=... RealMemory=... after name and address
        return [
            f"NodeName={node.hostname} NodeAddr={node.address} {described}" for node in self.nodes
        ]

    def on_controller(self, argv: list[str]) -> list[str]:
        """Under the controller's hostname (the host's own network)."""
        return ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', CONTROLLER, *argv]

    def start_slurmd(self) -> None:
        for node in self.nodes:
            (self.folder / "spool" / node.hostname).mkdir(exist_ok=True)  # slurmd makes none
            self.launch(
                f"slurmd-{node.hostname}",
                *node.daemon_command(["slurmd", "-D", "-f", str(self.conf), "-N", node.hostname]),
                ready=lambda name=node.hostname: (
                    self.node_idle(name) and self.succeeds("sacct", "-n", "-X")
                ),
            )
