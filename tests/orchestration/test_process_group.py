"""The interface a worker's process group is bound to: the one holding its node's Ray address,
found in this machine's interface list; an address no interface holds leaves gloo and NCCL to
their own choice."""

import psutil

from scale_lth.orchestration import process_group
from scale_lth.orchestration.process_group import GLOO, NCCL, bind_to_node_address


def test_the_interface_holding_an_address_is_found_by_its_address():
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family.name in ("AF_INET", "AF_INET6"):
                found = process_group.interface_holding(entry.address.split("%")[0])
                assert found is not None
                assert entry.address in [e.address for e in psutil.net_if_addrs()[found]]
    assert process_group.interface_holding("203.0.113.77") is None  # TEST-NET-3: nobody's


def bound(monkeypatch, node_address: str, environ: dict[str, str]) -> dict[str, str]:
    """The variables a worker on a node with ``node_address`` has after binding, starting
    from ``environ`` (the process's own environment untouched)."""
    monkeypatch.setattr(process_group.ray.util, "get_node_ip_address", lambda: node_address)
    monkeypatch.setattr(process_group.os, "environ", dict(environ))
    bind_to_node_address()
    return process_group.os.environ


def test_a_worker_names_its_nodes_interface_unless_the_user_did(monkeypatch):
    loopback = process_group.interface_holding("127.0.0.1")
    assert bound(monkeypatch, "127.0.0.1", {}) == {GLOO: loopback, NCCL: f"={loopback}"}
    assert bound(monkeypatch, "127.0.0.1", {NCCL: "ib0"}) == {GLOO: loopback, NCCL: "ib0"}


def test_an_address_no_interface_holds_changes_nothing(monkeypatch):
    assert bound(monkeypatch, "203.0.113.77", {}) == {}
