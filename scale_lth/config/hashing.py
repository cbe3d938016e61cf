"""A stable name for an experiment: the hash of its hashed, non-default config values.

Only values that differ from the schema's defaults take part, so adding an option with a
neutral default never renames existing results (tests pin a few hashes to catch renames).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from scale_lth.config.duration import Duration


def non_default_values(config: Any) -> dict[str, Any]:
    """The hashed fields of a config dataclass whose values differ from their defaults."""
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(config):
        if not spec.metadata.get("hashed", True):
            continue
        value = getattr(config, spec.name)
        if dataclasses.is_dataclass(value):
            nested = non_default_values(value)
            if nested:
                values[spec.name] = nested
        elif value != _default(spec):
            values[spec.name] = _plain(value)
    return values


def experiment_hash(config: Any) -> str:
    """Ten hex digits of the SHA-256 of the normalised non-default values."""
    text = json.dumps(non_default_values(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Every field as ``section.key -> plain value`` (for MLflow params and `config show`)."""
    flat: dict[str, Any] = {}
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        if dataclasses.is_dataclass(value):
            flat.update(flatten(value, f"{prefix}{spec.name}."))
        else:
            flat[f"{prefix}{spec.name}"] = _plain(value)
    return flat


def _default(spec: dataclasses.Field) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    return spec.default_factory()


def _plain(value: Any) -> Any:
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value
