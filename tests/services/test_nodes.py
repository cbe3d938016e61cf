"""The namespaced nodes the cluster tests run on (tests.services.nodes): they reach each other
by address, each has its own hostname resolving as asked, and nothing they made (namespaces,
links, /etc/netns files, processes started in them) is left after a pass, a failure or
Ctrl-C."""

import subprocess
import sys
import time

import psutil
import pytest

from tests.services.nodes import Nodes, require_namespaces

pytestmark = [pytest.mark.integration]

# A node's view: its hostname, what that resolves to, what the peer's hostname resolves to,
# and the address of a TCP connection it makes to the peer's address.
VIEW = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as peer:
    print(socket.gethostname(), socket.gethostbyname(socket.gethostname()),
          socket.gethostbyname(sys.argv[3]), peer.getsockname()[0])
"""
SERVE_ONCE = """
import socket
with socket.create_server(("0.0.0.0", 5000)) as server:
    print("listening", flush=True)
    server.accept()[0].close()
"""


@pytest.fixture(autouse=True)
def namespaces_possible():
    require_namespaces()


def view_from(node, peer) -> list[str]:
    """What ``node`` says of itself after connecting to a server on ``peer``."""
    server = subprocess.Popen(
        peer.command([sys.executable, "-c", SERVE_ONCE]),
        env=peer.environment(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "listening"
        result = node.run(
            [sys.executable, "-c", VIEW, peer.address, "5000", peer.hostname], timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.split()
    finally:
        server.wait(timeout=30)


@pytest.mark.parametrize(
    "hostnames, names, own, peers",  # what a node's own name and its peer's resolve to there
    [
        ("own", ["node-a", "node-b"], "address", "address"),
        ("debian", ["node-a", "node-b"], "127.0.1.1", "address"),
        ("shared", ["twin", "twin"], "127.0.0.1", "127.0.0.1"),
    ],
)
def test_nodes_reach_each_other_by_address_under_their_own_hostnames(hostnames, names, own, peers):
    with Nodes(2, hostnames) as nodes:
        a, b = nodes
        for node, peer, name in [(a, b, names[0]), (b, a, names[1])]:
            hostname, address, peer_address, source = view_from(node, peer)
            assert hostname == name
            assert address == (node.address if own == "address" else own)
            assert peer_address == (peer.address if peers == "address" else peers)
            assert source == node.address  # it reached the peer from its own address
    assert nodes.leftovers() == []


@pytest.mark.parametrize("ending", [RuntimeError, KeyboardInterrupt])
def test_nothing_is_left_after_a_failure_or_ctrl_c(ending):
    with pytest.raises(ending):
        with Nodes(2) as nodes:
            started = [
                subprocess.Popen(node.command(["sleep", "600"]), env=node.environment())
                for node in nodes
            ]
            deadline = time.monotonic() + 30  # `ip netns exec` enters the node after Popen returns
            while not all(node.pids() for node in nodes):
                if time.monotonic() > deadline:  # a hang guard
                    raise TimeoutError("the processes never showed in their nodes")
                time.sleep(0.05)
            raise ending()
    assert nodes.leftovers() == []
    for process in started:
        assert process.wait(timeout=30) is not None
        assert not psutil.pid_exists(process.pid)
