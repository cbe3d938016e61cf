"""The address a node of a multi-node SLURM allocation gives its Ray: its name's, unless that is
loopback (Debian's /etc/hosts maps a machine's own name to 127.0.1.1), then the address it
reaches the next node from (checked on namespaced nodes whose own names resolve so)."""

import sys

import pytest

from scale_lth.errors import UserError
from scale_lth.orchestration.ray_cluster import is_loopback
from scale_lth.orchestration.slurm import node_address
from tests.services.nodes import Nodes, require_namespaces


@pytest.mark.parametrize(
    "host, loopback",
    [("localhost", True), ("127.0.0.1", True), ("127.0.1.1", True), ("::1", True),
     ("10.0.0.1", False), ("node-a", False), ("::", False)],
)  # fmt: skip
def test_loopback_is_all_of_127_0_0_0_8_and_localhost(host, loopback):
    assert is_loopback(host) == loopback


def test_a_name_that_resolves_to_a_cluster_address_is_that_address():
    assert node_address(["10.1.2.3", "10.1.2.4"], 0) == "10.1.2.3"
    assert node_address(["10.1.2.3", "10.1.2.4"], 1) == "10.1.2.4"


def test_names_that_all_resolve_to_loopback_are_refused_in_one_line():
    with pytest.raises(UserError, match="both resolve to loopback") as refused:
        node_address(["127.0.1.1", "127.0.0.1"], 0)
    assert "\n" not in str(refused.value)


@pytest.mark.integration
def test_a_node_whose_name_is_on_loopback_gives_its_address_toward_the_others():
    """On namespaced nodes whose own names resolve to 127.0.1.1 on themselves (Debian's
    /etc/hosts), each node's address is that of its interface toward the other."""
    require_namespaces()
    ask = "import sys; from scale_lth.orchestration.slurm import node_address; "
    ask += "print(node_address(sys.argv[1:3], int(sys.argv[3])))"
    with Nodes(2, "debian") as nodes:
        names = [node.hostname for node in nodes]
        for index, node in enumerate(nodes):
            result = node.run([sys.executable, "-c", ask, *names, str(index)], timeout=120)
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == node.address
