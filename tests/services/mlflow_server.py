"""A real `mlflow server` on a free port of loopback (or of the address given: the namespaced
nodes' bridge, say), for integration tests.

It runs with a SQLite backend store and proxied artifacts under one folder, in a session of
its own (it starts a uvicorn worker), without MLflow's job execution (consumers of its GenAI
jobs, seven processes importing MLflow at each start, which serve nothing here). Stopping
kills every process of that session by PID, then waits until they are gone. A kill, not
SIGTERM: uvicorn's graceful stop waits for its clients' keep-alive connections to close,
seconds a test would spend waiting, and a SQLite store is whole after a kill (an outage test
starts the server again on it).
"""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from scale_lth.orchestration.ray_cluster import free_port
from tests.processes import session_members

START_TIMEOUT_S = 120


class MlflowServer:
    def __init__(self, folder: Path, verb: str = "server", host: str = "127.0.0.1") -> None:
        """``verb``: ``server``, or ``ui`` (the command the README gives for the UI)."""
        self.folder = Path(folder)
        self.verb = verb
        self.host = host
        self.port = free_port()
        self.uri = f"http://{host}:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "MlflowServer":
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "server.log", "w")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("mlflow")),
                self.verb,
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--backend-store-uri",
                f"sqlite:///{self.folder / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.folder / "artifacts"),
                "--workers",
                "1",
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self.folder / "server.log").read_text()[-2000:]
                raise RuntimeError(f"mlflow server did not start:\n{tail}")
            time.sleep(0.5)
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        members = session_members(self.process.pid)
        for member in members:
            try:
                member.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(members, timeout=10)
        self.process.wait()
        self.process = None

    def __enter__(self) -> "MlflowServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
