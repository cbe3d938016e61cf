"""Work only one process may do at a time: training a run, delivering an outbox, making an
MLflow run or writing the embedded data. A lock is ``flock`` on a file, which the kernel releases
when its holder dies (on NFS, where Linux takes it as a lock on the whole file, once the dead
client's lease ends); the file records who holds it (host, PID, the process's start time), so a
process that finds it held can say by whom, and one that takes a lock its holder never released
can say from whom it took it over."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil


def this_process() -> dict[str, object]:
    """Who holds a lock this process takes."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": psutil.Process().create_time(),
    }


def describe(holder: dict | None) -> str:
    if not holder:
        return "a process that left no record"
    return f"process {holder.get('pid')} on {holder.get('host')}"


class FileLock:
    """An exclusive lock on ``path`` (made if needed), taken by ``acquire``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.descriptor: int | None = None
        self.left_by: dict | None = None  # the record of a holder that died holding it

    @property
    def held(self) -> bool:
        return self.descriptor is not None

    def acquire(self, wait: bool = False) -> bool:
        """Take the lock (waiting for it with ``wait``); False if another process holds it."""
        if self.descriptor is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(descriptor)
            return False
        self.left_by = _record(descriptor)  # a clean release leaves no record
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(this_process()).encode(), 0)
        self.descriptor = descriptor
        return True

    def holder(self) -> dict | None:
        """Who holds the lock now, as its file says (None: nobody said)."""
        if not self.path.is_file():
            return None
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            return _record(descriptor)
        finally:
            os.close(descriptor)

    def release(self) -> None:
        if self.descriptor is None:
            return
        os.ftruncate(self.descriptor, 0)
        fcntl.flock(self.descriptor, fcntl.LOCK_UN)
        os.close(self.descriptor)
        self.descriptor = None


def _record(descriptor: int) -> dict | None:
    text = os.pread(descriptor, 4096, 0).decode(errors="replace")
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:  # cut short by a crash while it was written
        return None


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[FileLock]:
    """Hold the lock on ``path``, waiting for it, for the ``with`` block."""
    lock = FileLock(path)
    lock.acquire(wait=True)
    try:
        yield lock
    finally:
        lock.release()
