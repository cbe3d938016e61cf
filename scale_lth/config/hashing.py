"""A stable name for an experiment: the hash of its hashed, non-default config values.

Only values that differ from the schema's defaults take part, so adding an option with a
neutral default never renames existing results (tests pin a few hashes to catch renames). A
method's own settings (the ``baselines`` fields the method registry names) stay out of the
experiment's hash; they name that method's runs instead (``method_hash``), so changing one
never renames the trunk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from typing import Any

from scale_lth import methods
from scale_lth.config.duration import Duration


def non_default_values(config: Any, method: str | None = None, section: str = "") -> dict:
    """The hashed fields of a config dataclass whose values differ from their defaults: the
    experiment's (``method=None``) or those of one method's own settings."""
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(config):
        if not spec.metadata.get("hashed", True):
            continue
        value = getattr(config, spec.name)
        owner = methods.owner_of(spec.name) if section == "baselines" else None
        name = spec.metadata.get("identity") or spec.name
        if dataclasses.is_dataclass(value):
            nested = non_default_values(value, method, spec.name)
            if nested:
                values[name] = nested
        elif owner == method and value != default_of(spec):
            values[name] = plain(value)
    return values


def _digest(values: dict[str, Any], length: int) -> str:
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def experiment_hash(config: Any) -> str:
    """Ten hex digits of the SHA-256 of the normalised non-default values."""
    return _digest(non_default_values(config), 10)


def method_hash(config: Any, method: str) -> str:
    """Six hex digits naming ``method``'s non-default own settings; empty when all default."""
    values = non_default_values(config, method)
    return _digest(values, 6) if values else ""


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Every field as ``section.key -> plain value`` (for MLflow params and `config show`)."""
    flat: dict[str, Any] = {}
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        if dataclasses.is_dataclass(value):
            flat.update(flatten(value, f"{prefix}{spec.name}."))
        else:
            flat[f"{prefix}{spec.name}"] = plain(value)
    return flat


def default_of(spec: dataclasses.Field) -> Any:
    """A field's default value (a fresh copy of a mutable one)."""
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is dataclasses.MISSING:
        raise TypeError(f"config field {spec.name!r} has no default")
    return spec.default_factory()


def plain(value: Any) -> Any:
    """A config value as YAML and JSON write it (durations as text)."""
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return value


def identity_keys(config_class: type, prefix: str = "") -> set[str]:
    """The dotted names of every field that takes part in an experiment's or a method's
    identity (all but ``hashed=False``)."""
    keys: set[str] = set()
    hints = typing.get_type_hints(config_class)
    for spec in dataclasses.fields(config_class):
        if not spec.metadata.get("hashed", True):
            continue
        if dataclasses.is_dataclass(hints[spec.name]):
            keys |= identity_keys(hints[spec.name], f"{prefix}{spec.name}.")
        else:
            keys.add(f"{prefix}{spec.name}")
    return keys
