"""Ray token authentication for the clusters this project starts and the ones it joins.

Ray 2.60 reads ``RAY_AUTH_MODE`` and the token's place (``RAY_AUTH_TOKEN``, else the file at
``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``) from the environment of every process of a
cluster: its daemons, its workers and its clients, each when it starts. So every cluster the
project starts gets a fresh token in a file of its own (mode 0600; on the job's shared folder
when several nodes must read it), and the environment naming that file is handed to each
``ray start`` and set in this process before ``ray`` is first imported. Nothing is read from or
written to the home folder for a cluster the project starts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from scale_lth.errors import UserError
from scale_lth.storage import atomic_write

MODE = "RAY_AUTH_MODE"
TOKEN = "RAY_AUTH_TOKEN"
TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"


def create_token(path: Path) -> Path:
    """A new random token in ``path``, readable by its owner only; returns ``path``."""
    atomic_write(path, secrets.token_hex(32), private=True)
    return path


def token_environment(path: Path) -> dict[str, str]:
    """The variables that make a Ray process use the token in ``path``."""
    return {MODE: "token", TOKEN_PATH: str(path)}


def use_token(path: Path) -> None:
    """This process (and what it starts) uses the token in ``path``; call before ``import
    ray``, which reads the mode once."""
    os.environ.pop(TOKEN, None)  # it would win over the file
    os.environ.update(token_environment(path))


def default_token_path() -> Path:
    return Path.home() / ".ray" / "auth_token"


def require_client_token(address: str) -> None:
    """Before joining the cluster at ``address``: token mode on (unless the user turned it
    off), and a token where Ray will look; else one line saying where it must be."""
    mode = os.environ.setdefault(MODE, "token")
    if mode.lower() != "token" or os.environ.get(TOKEN):
        return
    named = os.environ.get(TOKEN_PATH)
    path = Path(named) if named else default_token_path()
    if not (path.is_file() and path.read_text().strip()):
        where = f"{TOKEN_PATH}={named} names no token file" if named else f"no {path}"
        raise UserError(
            f"the Ray cluster at {address} needs its auth token and there is {where}: copy the "
            f"cluster's token (`ray get-auth-token` on its head) to {default_token_path()}, or "
            f"set {TOKEN_PATH} to its file or {TOKEN} to the token"
        )
