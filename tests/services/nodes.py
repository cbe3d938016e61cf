"""Nodes on one machine, for tests of clusters: each node a network namespace with its own
loopback, its own address in one private /24 (``SUBNET``, used by nothing else here) on an
interface named ``eth0``, its own hostname and its own ``/etc/hosts``; all joined by a bridge
on the host that has no address itself (but see ``controller``), so the nodes reach each other
and nothing else (there is no route out of them and nothing forwards).

``Nodes`` makes them and, when its block ends (a pass, a failure, Ctrl-C), removes everything
it made: the processes running in its namespaces, the namespaces (their veths go with them),
the bridge and the ``/etc/netns`` files. Everything it names starts with ``lthn<pid>-``, so
what a killed test run left is recognised (its pid is gone) and removed by the next one.

A command runs "on" a node through ``Node.command``: ``ip netns exec`` (which also binds the
node's ``/etc/netns/<namespace>/hosts`` over ``/etc/hosts`` for it), then ``unshare --uts``
with the node's hostname, so the command and every process it starts (daemons included) see
the node's network, name and hosts file. Three kinds of names: ``hostnames="own"`` gives each
node its own hostname resolving to its address; ``"debian"`` gives each node its own hostname,
which on that node resolves to 127.0.1.1 (as Debian's installer writes /etc/hosts) and on the
others to its address; ``"shared"`` gives every node the same hostname resolving to 127.0.0.1,
as on machines whose hostname maps to loopback.

With ``controller=True`` the host itself joins the bridge at ``CONTROLLER_ADDRESS`` (named
``CONTROLLER`` in the nodes' hosts files), as a cluster's controller machine: daemons on the
host bound to that address (SLURM's controller) serve the nodes, and the host reaches the
nodes. Still nothing routes the nodes' traffic anywhere else.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil
import pytest

from scale_lth.orchestration.ray_cluster import stop_processes

ROOT = Path(__file__).resolve().parents[2]  # the checkout under test
SUBNET = ipaddress.ip_network("10.231.77.0/24")
PREFIX = "lthn"
NETNS_FILES = Path("/etc/netns")
SHARED_HOSTNAME = "twin"
CONTROLLER = "controller"
CONTROLLER_ADDRESS = str(SUBNET.broadcast_address - 1)  # the last address: never a node's
_OURS = re.compile(rf"^{PREFIX}(\d+)-")


def require_namespaces() -> None:
    """Fail, naming the fix, where namespaced nodes cannot be made: their tests run in CI
    always, never skipped (`make install` installs iproute2; the tests run as root, as the
    SLURM ones do)."""
    if os.geteuid() != 0:
        pytest.fail("namespaced nodes need root (`ip netns add`): run the tests as root")
    missing = [tool for tool in ("ip", "unshare") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"namespaced nodes need {' and '.join(missing)}: run `make install`")


def _ip(*arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *arguments], capture_output=True, text=True, check=check)


def _namespaces() -> list[str]:
    """Every network namespace's name (``ip netns list`` adds ``(id: N)`` after some)."""
    return [line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line]


def _links() -> list[str]:
    """Every network interface's name on the host."""
    lines = _ip("-o", "link", "show").stdout.splitlines()
    return [line.split(": ", 2)[1].split("@")[0] for line in lines if line]


@dataclass(frozen=True)
class Node:
    """One node: its namespace, hostname, address (on ``eth0``) and the hosts file it sees."""

    namespace: str
    hostname: str
    address: str
    interface: str = "eth0"

    def command(self, argv: Sequence[str], private: Sequence[Path] = ()) -> list[str]:
        """``argv`` run on this node: in its namespace, under its hostname, with an empty tmpfs
        of its own over each folder of ``private`` (a disk of this node's alone: what it
        writes there no other process sees, and it is gone when its last process ends)."""
        mounts = "".join(f' && mount -t tmpfs {PREFIX}-private "{path}"' for path in private)
        return [
            "ip", "netns", "exec", self.namespace,
            "unshare", "--uts", *(["--mount"] if private else []),
            "sh", "-c", f'hostname "$0"{mounts} && exec "$@"', self.hostname,
            *argv,
        ]  # fmt: skip

    def daemon_command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run on this node as ``command`` does, but seeing the host's ``/sys`` with
        its cgroup hierarchies, which slurmd needs (``ip netns exec`` mounts a /sys without
        them): the node's network entered directly, its hosts file bound over /etc/hosts in a
        mount namespace of its own."""
        hosts = NETNS_FILES / self.namespace / "hosts"
        return [
            "nsenter", f"--net=/run/netns/{self.namespace}",
            "unshare", "--uts", "--mount", "sh", "-c",
            f'mount --bind "{hosts}" /etc/hosts && hostname "$0" && exec "$@"', self.hostname,
            *argv,
        ]  # fmt: skip

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """This process's environment, the checkout under test first on PYTHONPATH (Python
        processes on the node, and the Ray workers its daemons start, import it), plus
        ``extra``."""
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        return {**os.environ, "PYTHONPATH": path, **(extra or {})}

    def run(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        private: Sequence[Path] = (),
        **options,
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` on this node to the end (``private`` as ``command`` says), its output
        captured as text."""
        options = {"capture_output": True, "text": True, "cwd": ROOT, **options}
        return subprocess.run(self.command(argv, private), env=self.environment(env), **options)

    def pids(self) -> list[int]:
        """The processes running in this node's namespace."""
        listed = _ip("netns", "pids", self.namespace, check=False).stdout.split()
        return [int(pid) for pid in listed]

    def lose(self) -> None:
        """The machine lost: every process on it killed at once (SIGKILL), none spared."""
        victims = []
        for pid in self.pids():
            try:
                victims.append(psutil.Process(pid))
                victims[-1].kill()
            except psutil.Error:
                continue
        psutil.wait_procs(victims, timeout=30)

    def link(self, up: bool) -> None:
        """Plug this node's cable in (``up``) or pull it out: its end on the bridge."""
        _ip("link", "set", f"{self.namespace}h", "up" if up else "down")


class Nodes:
    """``count`` namespaced nodes on one bridge, removed with all they run when the block
    ends. One set at a time per process (its names hold the pid)."""

    def __init__(
        self,
        count: int,
        hostnames: Literal["own", "debian", "shared"] = "own",
        controller: bool = False,
    ) -> None:
        if not 1 <= count <= 26:
            raise ValueError("between 1 and 26 nodes")
        self.tag = f"{PREFIX}{os.getpid()}-"  # names are short: links take 15 characters
        self.bridge = f"{self.tag}br"
        addresses = list(SUBNET.hosts())
        self.nodes = [
            Node(
                namespace=f"{self.tag}{letter}",
                hostname=SHARED_HOSTNAME if hostnames == "shared" else f"node-{letter}",
                address=str(addresses[i]),
            )
            for i, letter in enumerate("abcdefghijklmnopqrstuvwxyz"[:count])
        ]
        self.hostnames = hostnames
        self.controller = controller

    def __enter__(self) -> Nodes:
        remove_stale()
        if self.leftovers():
            raise RuntimeError(f"namespaced nodes of this process already exist: {self.tag}")
        try:
            self._make()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()

    def __iter__(self):
        return iter(self.nodes)

    def __getitem__(self, index: int) -> Node:
        return self.nodes[index]

    @property
    def own_names(self) -> bool:
        """Whether each node has a hostname of its own."""
        return self.hostnames != "shared"

    def _hosts_file(self, seen_from: Node) -> str:
        lines = ["127.0.0.1 localhost"]
        if self.hostnames == "shared":
            lines[0] += f" {SHARED_HOSTNAME}"
        for node in self.nodes if self.own_names else ():
            on_loopback = self.hostnames == "debian" and node is seen_from
            lines.append(f"{'127.0.1.1' if on_loopback else node.address} {node.hostname}")
        if self.controller:
            lines.append(f"{CONTROLLER_ADDRESS} {CONTROLLER}")
        return "\n".join(lines) + "\n"

    def _make(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("link", "set", self.bridge, "up")
        if self.controller:
            _ip("addr", "add", f"{CONTROLLER_ADDRESS}/{SUBNET.prefixlen}", "dev", self.bridge)
        for node in self.nodes:
            host_end = f"{node.namespace}h"
            _ip("netns", "add", node.namespace)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", node.interface,
                "netns", node.namespace)  # fmt: skip
            _ip("link", "set", host_end, "master", self.bridge)
            _ip("link", "set", host_end, "up")
            inside = ("-n", node.namespace)
            _ip(*inside, "addr", "add", f"{node.address}/{SUBNET.prefixlen}", "dev",
                node.interface)  # fmt: skip
            _ip(*inside, "link", "set", node.interface, "up")
            _ip(*inside, "link", "set", "lo", "up")
            files = NETNS_FILES / node.namespace
            files.mkdir(parents=True, exist_ok=True)
            (files / "hosts").write_text(self._hosts_file(node))
            # no name server: a name not in the hosts file fails at once, asking nobody
            (files / "resolv.conf").write_text("")

    def remove(self) -> None:
        """Stop every process in the nodes, then remove namespaces, bridge and files."""
        _remove_tagged(self.tag)

    def leftovers(self) -> list[str]:
        """What of this set still exists: namespaces, links, ``/etc/netns`` folders."""
        return _tagged(self.tag)


def _tagged(tag: str) -> list[str]:
    found = [f"namespace {name}" for name in _namespaces() if name.startswith(tag)]
    found += [f"link {name}" for name in _links() if name.startswith(tag)]
    if NETNS_FILES.is_dir():
        found += [f"file {path}" for path in NETNS_FILES.glob(f"{tag}*")]
    return found


def _remove_tagged(tag: str) -> None:
    namespaces = [name for name in _namespaces() if name.startswith(tag)]
    for name in namespaces:
        stop_processes(Node(name, "", "").pids(), grace_seconds=1)  # the namespace goes next
    for name in namespaces:
        _ip("netns", "delete", name, check=False)  # its veths go with it
    for name in _links():
        if name.startswith(tag):
            _ip("link", "delete", name, check=False)
    if NETNS_FILES.is_dir():
        for path in NETNS_FILES.glob(f"{tag}*"):
            shutil.rmtree(path, ignore_errors=True)
        try:
            NETNS_FILES.rmdir()  # only if nothing else uses it
        except OSError:
            pass
    deadline = time.monotonic() + 10
    while _tagged(tag) and time.monotonic() < deadline:  # deletions settle asynchronously
        time.sleep(0.1)


def remove_stale() -> None:
    """Remove what a test process that no longer runs left behind (its pid is in the names)."""
    names = _namespaces() + _links()
    if NETNS_FILES.is_dir():
        names += [path.name for path in NETNS_FILES.iterdir()]
    for pid in {int(match[1]) for name in names if (match := _OURS.match(name))}:
        if not psutil.pid_exists(pid):
            _remove_tagged(f"{PREFIX}{pid}-")
