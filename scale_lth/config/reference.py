"""The config's reference, read from the schema: every setting with its type, default, rule,
whether it names the experiment, and its help. ``docs/config.md`` is ``markdown()``, written by
``scale-lth config schema > docs/config.md`` (a test fails when the two differ)."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any

from scale_lth import methods
from scale_lth.config.hashing import default_of, plain
from scale_lth.config.loading import describe_type
from scale_lth.config.schema import Config

HEADER = """# Config reference

Every setting of an experiment config, generated from the schema (`scale_lth/config/schema.py`)
by `scale-lth config schema > docs/config.md`; `tests/config/test_reference.py` fails when this
page and the schema differ. Set them in the YAML file (`section: {key: value}`) or on the
command line after the config (`section.key=value`); `scale-lth config show CONFIG` prints the
resolved values and the hash.

**Identity** says what a setting changes: `experiment` settings are what the experiment
computes, so a value other than the default gives the experiment another hash and folder;
`method's runs` settings name only that baseline's run folders (`snip-3f9a0c`); `no` settings
say where, how or how far it runs and never change a result's name.
"""


@dataclass(frozen=True)
class Setting:
    key: str  # dotted: ``training.lr``
    type: str
    default: Any
    rule: str  # what every value must meet, if anything
    identity: str  # "experiment", "method's runs" or "no"
    help: str


def settings(schema: type = Config, prefix: str = "") -> list[Setting]:
    """Every setting of ``schema``, its own scalars first, then each section's in order."""
    hints = typing.get_type_hints(schema)
    found, sections = [], []
    for spec in dataclasses.fields(schema):
        if dataclasses.is_dataclass(hints[spec.name]):
            sections.append(spec)
            continue
        valid = spec.metadata.get("valid")
        identity = "experiment" if spec.metadata.get("hashed", True) else "no"
        if prefix == "baselines." and methods.owner_of(spec.name):
            identity = "method's runs"
        found.append(
            Setting(
                key=f"{prefix}{spec.name}",
                type=describe_type(hints[spec.name]),
                default=plain(default_of(spec)),
                rule=valid[1]() if valid else "",
                identity=identity,
                help=spec.metadata.get("help", ""),
            )
        )
    for spec in sections:
        found += settings(hints[spec.name], f"{prefix}{spec.name}.")
    return found


def section_help(schema: type = Config) -> dict[str, str]:
    """Each section's one-line help."""
    hints = typing.get_type_hints(schema)
    return {
        spec.name: spec.metadata.get("help", "")
        for spec in dataclasses.fields(schema)
        if dataclasses.is_dataclass(hints[spec.name])
    }


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell (no HTML tags, no column breaks)."""
    return text.replace("<", "&lt;").replace("|", "\\|")


def markdown() -> str:
    """``docs/config.md``: one table per section."""
    grouped: dict[str, list[Setting]] = {}
    for setting in settings():
        section = setting.key.rpartition(".")[0]
        grouped.setdefault(section, []).append(setting)
    helps = section_help()
    lines = [HEADER]
    for section, found in grouped.items():
        title = f"`{section}`: {helps[section]}" if section else "Top level"
        lines += [
            f"## {title}",
            "",
            "| key | type | default | rule | identity | help |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| `{s.key}` | {s.type} | `{json.dumps(s.default)}` | {s.rule} | {s.identity} "
            f"| {_cell(s.help)} |"
            for s in found
        ]
        lines.append("")
    return "\n".join(lines)
