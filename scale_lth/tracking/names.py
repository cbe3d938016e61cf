"""What the MLflow runs table calls each run: a name that says what the row is (which
replicate, level, method, experiment), the experiment's hash cut to six digits."""

from __future__ import annotations

from scale_lth.config import Config
from scale_lth.results import RunKey

SHORT_HASH = 6


def trunk_name(config: Config, replicate: int) -> str:
    return f"replicate {replicate} · {config.name} · {config.hash[:SHORT_HASH]}"


def level_name(key: RunKey) -> str:
    return f"level {key.level} · {key.branch} · r{key.replicate}"


def curve_name(config: Config, method: str) -> str:
    return f"curve · {method} · {config.name}"


def summary_name(config: Config) -> str:
    return f"summary · {config.name} · {config.hash[:SHORT_HASH]}"
