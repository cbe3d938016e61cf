"""Where the runs are stored: the tracking URI a config resolves to, the SQLite file behind a
local one, and credentials kept out of everything written or printed: user info in a URI moves
to MLflow's own variables for credentials, which its client sends as HTTP auth."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import urllib.parse
from pathlib import Path

from scale_lth.config import Config

URI_VARIABLE = "MLFLOW_TRACKING_URI"  # MLflow's name, read by every process it starts too
USERNAME, PASSWORD = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"  # MLflow's names
TOKEN = "MLFLOW_TRACKING_TOKEN"  # a bearer token, the other way MLflow's client authenticates
CREDENTIALS = (USERNAME, PASSWORD, TOKEN)


def tracking_uri(config: Config) -> str:
    """The config's URI, else MLFLOW_TRACKING_URI, else ``sqlite:///<cwd>/mlflow.db``."""
    uri = config.tracking.uri or os.environ.get(URI_VARIABLE, "")
    return uri or f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"


def is_refused_file_store(uri: str) -> bool:
    """A folder of runs (``file:`` or a plain path, such as ./mlruns): MLflow's file store,
    which MLflow 3 no longer opens unless MLFLOW_ALLOW_FILE_STORE says so."""
    allowed = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() in ("true", "1")
    return urllib.parse.urlsplit(uri).scheme in ("", "file") and not allowed


def local_store(uri: str) -> Path | None:
    """The SQLite file behind a ``sqlite:///`` URI, else None."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def split_credentials(uri: str) -> tuple[str, tuple[str, str] | None]:
    """``scheme://user:secret@host/path`` -> ``(scheme://host/path, (user, secret))``; a URI
    without user info comes back as it is, with None."""
    parts = urllib.parse.urlsplit(uri)
    if "@" not in parts.netloc:
        return uri, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, secret = userinfo.partition(":")
    clean = urllib.parse.urlunsplit(parts._replace(netloc=host))
    return clean, (urllib.parse.unquote(user), urllib.parse.unquote(secret))


def credentials_moved(config: Config) -> Config:
    """The config with a tracking URI that holds no secret. User info in ``tracking.uri`` (or
    in MLFLOW_TRACKING_URI) moves to MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in
    this process's environment (values already there win), where MLflow's client and the
    health check read them and Ray workers inherit them; the URI keeps only where the store
    is."""
    uri = tracking_uri(config)
    clean, credentials = split_credentials(uri)
    if credentials is None:
        return config
    os.environ.setdefault(USERNAME, credentials[0])
    os.environ.setdefault(PASSWORD, credentials[1])
    if os.environ.get("MLFLOW_TRACKING_URI") == uri:
        os.environ["MLFLOW_TRACKING_URI"] = clean
    return dataclasses.replace(config, tracking=dataclasses.replace(config.tracking, uri=clean))


def auth_headers() -> dict[str, str]:
    """The HTTP headers MLflow's client would authenticate with, from its variables."""
    if os.environ.get(TOKEN):
        return {"Authorization": f"Bearer {os.environ[TOKEN]}"}
    if os.environ.get(USERNAME) or os.environ.get(PASSWORD):
        pair = f"{os.environ.get(USERNAME, '')}:{os.environ.get(PASSWORD, '')}"
        return {"Authorization": f"Basic {base64.b64encode(pair.encode()).decode()}"}
    return {}


def without_credentials(value: object) -> object:
    """``scheme://user:secret@host`` -> ``scheme://***@host`` in any string value."""
    if isinstance(value, str):
        return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", value)
    return value
