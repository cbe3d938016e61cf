"""Errors inside the workers that would only recur on a retry (config, data, code).

Ray Train's ``max_failures`` restarts the worker group whatever went wrong, which is right for
a lost worker or node and wrong for an error that will happen again. So a worker that raises
such an error writes it to this invocation's failure file first; every worker of the next
attempt finds the file and ends at once, and the driver reports the error in one line. Errors a
worker only suffers because a peer died (a broken collective) are not recorded: the restart is
what they need.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch.distributed as dist

from scale_lth.errors import WorkerError, one_line
from scale_lth.storage import atomic_write_json

PEER_LOST = ("gloo", "nccl", "connection closed", "connection reset", "broken pipe")


def lost_peer(error: BaseException) -> bool:
    """Whether ``error`` is what a rank sees when another rank of its group is gone."""
    if isinstance(error, dist.DistError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(sign in text for sign in PEER_LOST)


@dataclass(frozen=True)
class FailureFile:
    """The first lasting error of one invocation's workers."""

    path: Path

    def record(self, error: BaseException, rank: int) -> bool:
        """Keep ``error`` if it would recur (and is the first); whether it is recorded."""
        if lost_peer(error):
            return False
        if self.path.exists():
            return True
        details = {"rank": rank, "error": one_line(error), "traceback": traceback.format_exc()}
        atomic_write_json(self.path, details)
        return True

    def recorded(self) -> bool:
        return self.path.is_file()

    def raise_recorded(self) -> None:
        """Raise the recorded error as a WorkerError (and forget it), if there is one."""
        if not self.recorded():
            return
        details = json.loads(self.path.read_text())
        self.path.unlink()
        raise WorkerError(f"a worker (rank {details['rank']}) failed: {details['error']}")
