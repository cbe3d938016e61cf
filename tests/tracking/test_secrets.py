"""A password in a tracking URI is never written or printed: it travels as HTTP auth (MLflow's
own credential variables), and the URI everything shows holds only where the store is."""

import base64
import http.server
import os
import threading
from pathlib import Path

import pytest

from scale_lth.config import load
from scale_lth.preflight import check_tracking
from scale_lth.tracking.uri import PASSWORD, USERNAME, credentials_moved, tracking_uri
from tests.lottery.conftest import SMOKE
from tests.processes import scale_lth

SECRET = "planted-s3cret-4b1d"


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        Recorder.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


def test_the_health_check_sends_the_uris_user_info_as_basic_auth(monkeypatch):
    for name in (USERNAME, PASSWORD, "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        config = credentials_moved(
            load(SMOKE, [f"tracking.uri=http://alice:{SECRET}@127.0.0.1:{port}/"])
        )
        assert config.tracking.uri == f"http://127.0.0.1:{port}/"
        assert (os.environ[USERNAME], os.environ[PASSWORD]) == ("alice", SECRET)
        assert check_tracking(config, tracking_uri(config)) == config
    finally:
        server.shutdown()
    expected = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert Recorder.seen[-1] == ("/health", f"Basic {expected}")


def every_text(folder: Path) -> str:
    """Every file under ``folder``, decoded as far as it is text."""
    return "\n".join(
        path.read_bytes().decode(errors="replace")
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink()
    )


@pytest.mark.integration
def test_no_file_or_line_of_a_run_holds_the_password(tmp_path, mlflow_server):
    address = mlflow_server.uri.replace("http://", f"http://alice:{SECRET}@")
    env = {k: v for k, v in os.environ.items() if k not in (USERNAME, PASSWORD)}
    result = scale_lth(
        tmp_path,
        "lottery",
        SMOKE,
        "pruning.levels=1",
        "baselines.branches=[]",
        f"tracking.uri={address}",
        "tracking.experiment=secrets",
        "--quiet",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert mlflow_server.uri in result.stdout  # the lines name the store, without its secret
    assert SECRET not in result.stdout + result.stderr
    assert SECRET not in every_text(tmp_path)  # results, config.yaml, data, local files
    assert SECRET not in every_text(mlflow_server.folder)  # the store: params, tags, artifacts
