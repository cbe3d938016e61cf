"""What listens on namespaced nodes (tests.services.nodes): every TCP socket listening and every
UDP socket bound in a node's network namespace, read with ``ss`` inside it, each with the
command line of the process holding it. ``Listeners`` samples the nodes while a block runs, so
the sockets of processes that live only for a while (training workers, their process-group
store) are caught too."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import threading
from dataclasses import dataclass

import psutil

from tests.services.nodes import Node

_PROCESS = re.compile(r'\("([^"]*)",pid=(\d+)')  # ss: users:(("raylet",pid=12,fd=3),...)


@dataclass(frozen=True)
class Socket:
    node: Node
    address: str  # as bound: an address of the node, loopback, or a wildcard (0.0.0.0, ::)
    port: int
    command: str  # of the process holding it, shortened

    @property
    def is_wildcard(self) -> bool:
        return ipaddress.ip_address(self.address).is_unspecified

    @property
    def is_local(self) -> bool:
        """Bound to loopback or to the node's own cluster address."""
        ip = ipaddress.ip_address(self.address)
        mapped = getattr(ip, "ipv4_mapped", None)
        return (mapped or ip).is_loopback or str(mapped or ip) == self.node.address


def command(pid: int, name: str) -> str:
    """A process's command line, its program without the folder, cut to 200 characters (Ray
    pads the titles it gives its processes with spaces); ``name`` (as ``ss`` saw it) if the
    process is gone."""
    try:
        program, *arguments = psutil.Process(pid).cmdline() or [name]
    except psutil.Error:
        return f"{name} (gone)"
    return " ".join(" ".join([program.rsplit("/", 1)[-1], *arguments]).split())[:200]


def _address(local: str) -> tuple[str, int]:
    """``ss``'s local column (``10.0.0.1:80``, ``*:80``, ``[::ffff:127.0.0.1]:80``, with an
    ``%interface`` suffix where bound to one) as an address and a port."""
    host, port = local.rsplit(":", 1)
    host = host.strip("[]").split("%")[0]
    return ("::" if host == "*" else host), int(port)


def listening(node: Node) -> set[Socket]:
    """The node's listening TCP and bound UDP sockets now."""
    listed = subprocess.run(
        ["ip", "netns", "exec", node.namespace, "ss", "-H", "-l", "-t", "-u", "-n", "-p"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = set()
    for line in listed.splitlines():
        fields = line.split()
        address, port = _address(fields[4])
        for name, pid in _PROCESS.findall(fields[-1]):
            found.add(Socket(node, address, port, command(int(pid), name)))
    return found


class Listeners:
    """The sockets listening on ``nodes`` at any moment of a ``with`` block (sampled every
    ``every`` seconds, and once more at its end)."""

    def __init__(self, nodes: list[Node], every: float = 0.5) -> None:
        self.nodes = nodes
        self.every = every
        self.seen: set[Socket] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            for node in self.nodes:
                self.seen |= listening(node)
            if self._done.wait(self.every):
                return

    def __enter__(self) -> Listeners:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join()
