"""A Ray cluster on namespaced nodes (tests.services.nodes), made with the project's own
cluster code and token: a head on the first node (``ray_cluster.start_head`` on the node's
address), a worker on each other node (``ray_cluster.start_worker``), all with one token file.

``ray start`` must run on the node, so each is started by this module run there
(``python -m tests.services.ray_nodes head|worker ...``), which prints the node it started as
JSON; the test process stops it by its PIDs (the machine's process table is shared), and the
nodes' own removal stops whatever is left in their namespaces.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from scale_lth.orchestration.ray_auth import create_token
from scale_lth.orchestration.ray_cluster import RayNode, start_head, start_worker
from tests.services.nodes import Node

START_TIMEOUT_S = 300


def _on(node: Node, private: list[Path], *arguments: str) -> RayNode:
    result = node.run(
        [sys.executable, "-m", "tests.services.ray_nodes", *arguments],
        private=private,
        timeout=START_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise RuntimeError(f"starting Ray on {node.hostname} failed: {result.stderr[-2000:]}")
    fields = json.loads(result.stdout.strip().splitlines()[-1])
    return RayNode(**{**fields, "temp_dir": Path(fields["temp_dir"]),
                      "token": Path(fields["token"]), "pids": set(fields["pids"])})  # fmt: skip


class RayCluster:
    """A head on ``nodes[0]`` and a worker on each other node, ``cpus`` CPUs each; stopped (by
    PID) when the block ends. ``private[i]``: folders that node ``i``'s Ray processes (and so
    the workers they start) see as a disk of their own (``Node.command``)."""

    def __init__(
        self,
        nodes: list[Node],
        cpus: int,
        folder: Path,
        private: dict[int, list[Path]] | None = None,
    ) -> None:
        self.nodes = nodes
        self.cpus = cpus
        self.private = private or {}
        self.token = create_token(folder / "auth_token")
        self.started: list[RayNode] = []

    @property
    def head(self) -> RayNode:
        return self.started[0]

    def __enter__(self) -> RayCluster:
        try:
            first, *others = self.nodes
            head = ("head", first.address, str(self.cpus), str(self.token))
            self.started.append(_on(first, self.private.get(0, []), *head))
            for index, node in enumerate(others, start=1):
                arguments = ("worker", self.head.address, node.address, str(self.cpus))
                self.started.append(
                    _on(node, self.private.get(index, []), *arguments, str(self.token))
                )
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def restart_worker(self, index: int) -> None:
        """Start node ``index``'s Ray worker again (after it was lost), as it was started."""
        node = self.nodes[index]
        arguments = ("worker", self.head.address, node.address, str(self.cpus), str(self.token))
        self.started[index] = _on(node, self.private.get(index, []), *arguments)

    def stop(self) -> None:
        """Every node at once (each waits for its processes to end)."""
        with ThreadPoolExecutor(max(1, len(self.started))) as pool:
            # a short grace: Ray's daemons outlive SIGTERM for 10 s when stopped together, and
            # the nodes' removal ends whatever is left
            list(pool.map(lambda node: node.stop(grace_seconds=0.5), self.started))
        self.started.clear()


def _describe(node: RayNode) -> str:
    fields = asdict(node)
    return json.dumps({**fields, "temp_dir": str(node.temp_dir), "token": str(node.token),
                       "pids": sorted(node.pids)})  # fmt: skip


def main(arguments: list[str]) -> None:
    kind, *rest = arguments
    if kind == "head":
        address, cpus, token = rest
        started = start_head(address, num_cpus=int(cpus), token=Path(token))
    else:
        head, address, cpus, token = rest
        started = start_worker(head, address, num_cpus=int(cpus), token=Path(token))
    print(_describe(started))


if __name__ == "__main__":
    main(sys.argv[1:])
