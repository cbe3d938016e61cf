"""Running the real `scale-lth` command in a folder, and stopping whatever it started; and
the guard that keeps every other process out of the tests without the integration mark."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import popen_forkserver, popen_spawn_posix
from pathlib import Path

import psutil
import pytest

SCALE_LTH = str(Path(sys.executable).with_name("scale-lth"))


def session_members(session: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session:
                members.append(process)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def stop_session(process: subprocess.Popen) -> None:
    """SIGKILL the process and, by PID, everything else in its session (e.g. a local Ray
    it started: raylet, GCS, dashboard, workers), then wait until they are gone."""
    for member in session_members(process.pid):  # the child leads its own session
        try:
            member.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    process.wait()
    deadline = time.monotonic() + 30
    while session_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)


def start(cwd: Path, *arguments: str, env: dict | None = None) -> subprocess.Popen:
    """`scale-lth ARGUMENTS` in ``cwd``, in a session of its own."""
    return subprocess.Popen(
        [SCALE_LTH, *arguments],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def scale_lth(
    cwd: Path, *arguments: str, timeout: float = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run `scale-lth ARGUMENTS` in ``cwd`` to the end; stop all it started."""
    process = start(cwd, *arguments, env=env)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        stop_session(process)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


class ProcessStarted(Exception):
    """A test without the integration mark started a process."""


def refusal(argv) -> str:
    return (
        f"this test starts a process ({argv}) without the integration mark: mark it "
        "`pytest.mark.integration` or keep it in-process"
    )


@contextmanager
def processes_refused() -> Iterator[list]:
    """Within it, starting a program raises ProcessStarted: anything through subprocess.Popen
    (`ray start`, an MLflow server, Chromium, sbatch, the `scale-lth` script), os.system, and
    the processes of multiprocessing's spawn and forkserver (torch.multiprocessing.spawn).
    Forks stay allowed (FFCV's DatasetWriter forks its workers), and so does multiprocessing's
    resource tracker (FFCV's shared memory starts it). Yields the list of what was refused."""
    refused = []

    def refuse(argv):
        refused.append(argv)
        raise ProcessStarted(refusal(argv))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", lambda self, args, *_: refuse(args))
        patch.setattr(os, "system", refuse)
        for launcher in (popen_spawn_posix.Popen, popen_forkserver.Popen):
            patch.setattr(
                launcher, "_launch", lambda self, process: refuse(f"{self.method} {process.name}")
            )
        yield refused
