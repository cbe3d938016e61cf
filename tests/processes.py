"""Running the real `scale-lth` command in a folder, and stopping whatever it started."""

import os
import signal
import subprocess
import sys
from pathlib import Path

SCALE_LTH = str(Path(sys.executable).with_name("scale-lth"))


def stop_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and everything in its session (a local Ray it started, too)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def scale_lth(cwd: Path, *arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `scale-lth ARGUMENTS` in ``cwd`` in a session of its own; kill it all on timeout."""
    process = subprocess.Popen(
        [SCALE_LTH, *arguments],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(process)
        raise
    finally:
        stop_group(process)  # whatever the command left behind in its session
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
