"""The process group Ray Train makes for a worker group, bound to each node's Ray address.

Ray Train creates the group before the training loop runs (``ray.train.torch.config``:
``_TorchBackend.on_start`` runs ``dist.init_process_group`` on every worker, rendezvous at rank
0's Ray node address). Each rank then tells the others where to reach it: gloo (and NCCL's
bootstrap) advertise the address of the interface named by ``GLOO_SOCKET_IFNAME``
(``NCCL_SOCKET_IFNAME``), and without it the address the machine's hostname resolves to, which
is loopback wherever the hostname maps to 127.0.0.1 or Debian's 127.0.1.1: every rank then
advertises loopback and ranks on other nodes are refused. So before Ray creates the group, each
worker names the interface that holds its node's Ray address (``NodeAddressTorchConfig``), and
training works whatever the hostname resolves to. A variable the user set is left as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil
import ray
from ray.train.torch import TorchConfig
from ray.train.torch.config import _TorchBackend

GLOO = "GLOO_SOCKET_IFNAME"
NCCL = "NCCL_SOCKET_IFNAME"


def interface_holding(address: str) -> str | None:
    """The name of this machine's interface that has ``address``, or None."""
    for name, entries in psutil.net_if_addrs().items():
        if any(entry.address.split("%")[0] == address for entry in entries):
            return name
    return None


def bind_to_node_address() -> None:
    """In a Ray worker, before its process group exists: gloo and NCCL use the interface that
    holds this node's Ray address (none found: their own choice, as before)."""
    interface = interface_holding(ray.util.get_node_ip_address())
    if interface is not None:
        os.environ.setdefault(GLOO, interface)
        os.environ.setdefault(NCCL, f"={interface}")  # "=": this name exactly, not a prefix


class _NodeAddressBackend(_TorchBackend):
    def on_start(self, worker_group, backend_config) -> None:
        worker_group.execute(bind_to_node_address)
        super().on_start(worker_group, backend_config)


@dataclass
class NodeAddressTorchConfig(TorchConfig):
    """Ray Train's torch set-up, each worker's process group bound to its node's Ray address."""

    @property
    def backend_cls(self):
        return _NodeAddressBackend
