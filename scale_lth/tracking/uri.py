"""Where the runs are stored: the tracking URI a config resolves to, the SQLite file behind a
local one, and credentials taken out of any URI before it is shown or logged."""

from __future__ import annotations

import os
import re
from pathlib import Path

from scale_lth.config import Config


def tracking_uri(config: Config) -> str:
    """The config's URI, else MLFLOW_TRACKING_URI, else ``sqlite:///<cwd>/mlflow.db``."""
    uri = config.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    return uri or f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"


def local_store(uri: str) -> Path | None:
    """The SQLite file behind a ``sqlite:///`` URI, else None."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def without_credentials(value: object) -> object:
    """``scheme://user:secret@host`` -> ``scheme://***@host`` in any string value."""
    if isinstance(value, str):
        return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", value)
    return value
