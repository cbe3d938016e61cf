"""Build a validated Config from a YAML file and ``key.sub=value`` overrides.

Every problem is a ConfigError whose message is the single line a user sees: where the value
came from, which key, and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from scale_lth.config.duration import Duration
from scale_lth.config.schema import Config
from scale_lth.errors import UserError


class ConfigError(UserError, ValueError):
    """A bad config; the message is one line naming the source, the key and the fix."""


def load(path: str | Path | None, overrides: Iterable[str] = ()) -> Config:
    """Read ``path`` (None: all defaults), apply the overrides, and validate everything."""
    tree: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        tree = _read_yaml(Path(path))
    config = _build(Config, tree, source, prefix="")
    for text in overrides:
        key, value = _parse_override(text)
        config = _override(config, key, value, f"override '{text}'")
    if not config.name:
        stem = Path(path).stem if path is not None else "default"
        config = dataclasses.replace(config, name=stem)
    return config


def load_saved(path: Path) -> Config:
    """The config an experiment was written with (its ``config.yaml``: every setting, flat)."""
    saved = _read_yaml(Path(path))
    if not saved:
        raise ConfigError(
            f"{path} is empty: the experiment's saved config is lost; name the experiment by its "
            "CONFIG instead of its folder"
        )
    flat = current_names(saved)
    return load(None, [f"{key}={json.dumps(value)}" for key, value in flat.items()])


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file (see configs/ for the shipped ones)")
    try:
        tree = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}: fix the syntax") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections and keys")
    return tree


def _parse_override(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override '{text}': write overrides as key.sub=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _override(config: Any, dotted: str, value: Any, source: str, prefix: str = "") -> Any:
    head, _, rest = dotted.partition(".")
    fields = {f.name: f for f in dataclasses.fields(config)}
    if head not in fields:
        raise ConfigError(_unknown_key(source, prefix, head, fields, f"{prefix}{dotted}"))
    hint = _hints(type(config))[head]
    current = getattr(config, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"{source}: '{prefix}{head}' has no sub-keys")
        new = _override(current, rest, value, source, prefix=f"{prefix}{head}.")
    elif dataclasses.is_dataclass(current):
        new = _build(hint, value, source, prefix=f"{prefix}{head}.")
    else:
        new = _coerce(value, hint, source, f"{prefix}{head}", fields[head])
    return dataclasses.replace(config, **{head: new})


def _build(cls: type, tree: Any, source: str, prefix: str) -> Any:
    if not isinstance(tree, Mapping):
        section = prefix.rstrip(".") or "the top level"
        raise ConfigError(f"{source}: '{section}' must be a mapping of keys, got {tree!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    values = {}
    for key, value in tree.items():
        if key not in fields:
            raise ConfigError(_unknown_key(source, prefix, str(key), fields))
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, source, prefix=f"{prefix}{key}.")
        else:
            values[key] = _coerce(value, hint, source, f"{prefix}{key}", fields[key])
    return cls(**values)


# Sections renamed since experiments were first written: old name -> new name.
RENAMED_SECTIONS = {"stability": "instability"}
# Settings that only ever had one value and were never read, since removed.
RETIRED = {"pruning.strategy"}


def current_names(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Settings saved flat (an experiment's ``config.yaml``), each under its section's
    current name, retired ones left out."""
    renamed = {}
    for key, value in flat.items():
        section, dot, rest = key.partition(".")
        if key not in RETIRED:
            renamed[f"{RENAMED_SECTIONS.get(section, section)}{dot}{rest}"] = value
    return renamed


def _unknown_key(
    source: str, section: str, key: str, fields: Mapping[str, Any], dotted: str = ""
) -> str:
    """The line for ``key``, unknown in ``section`` (a prefix like ``training.``), as part of
    ``dotted`` (the whole key written, where it goes deeper)."""
    if not section and key in RENAMED_SECTIONS:
        return f"{source}: the section '{key}' is now called '{RENAMED_SECTIONS[key]}': rename it"
    close = difflib.get_close_matches(key, list(fields), n=1)
    hint = f" (did you mean '{section}{close[0]}'?)" if close else f" (known: {', '.join(fields)})"
    return f"{source}: unknown key '{dotted or section + key}'{hint}"


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a config section, resolved once (they are read for every
    key of every load)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _coerce(value: Any, hint: Any, source: str, key: str, spec: dataclasses.Field) -> Any:
    try:
        converted = _convert(value, hint)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source}: '{key}' must be {describe_type(hint)}, got {value!r}"
        ) from None
    rule = spec.metadata.get("valid")
    if rule is not None:
        test, wanted = rule
        items = converted.values() if isinstance(converted, dict) else converted
        for item in items if isinstance(converted, (list, dict)) else [converted]:
            if item is not None and not test(item):
                raise ConfigError(f"{source}: '{key}' must be {wanted()}, got {item!r}")
    return converted


def _convert(value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        alternatives = [arg for arg in args if arg is not type(None)]
        for inner in alternatives[:-1]:
            try:
                return _convert(value, inner)
            except (TypeError, ValueError):
                pass
        return _convert(value, alternatives[-1])
    if origin is Literal:
        if value not in args:
            raise ValueError(value)
        return value
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(value)
        return [_convert(item, args[0]) for item in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(value)
        return {_convert(k, args[0]): _convert(v, args[1]) for k, v in value.items()}
    if hint is Duration:
        return value if isinstance(value, Duration) else Duration.parse(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(value)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(value)
        return value
    if hint is float:
        if isinstance(value, bool):
            raise TypeError(value)
        return float(value)  # YAML reads '1e-3' as a string: accept any float spelling
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    raise TypeError(f"unsupported config type {hint!r}")


def describe_type(hint: Any) -> str:
    """A type as the config's messages and reference name it (``a duration like ...``)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [describe_type(arg) for arg in args if arg is not type(None)]
        return " or ".join(inner + (["null"] if type(None) in args else []))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args) if len(args) > 1 else repr(args[0])
    if origin is list:
        return f"a list (each item {describe_type(args[0])})"
    if origin is dict:
        return f"a mapping (keys {describe_type(args[0])}, values {describe_type(args[1])})"
    if hint is Duration:
        return "a duration like '90ep' or '5000it'"
    if dataclasses.is_dataclass(hint):
        return "section"
    article = "an" if hint is int else "a"
    return f"{article} {hint.__name__}"
