"""docs/config.md is the schema's reference, regenerated here; the reference names every
setting a config has, with the defaults a config without settings gets."""

import json
from pathlib import Path

from scale_lth.cli import main
from scale_lth.config import load
from scale_lth.config.reference import markdown, settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def test_docs_config_md_is_what_the_schema_generates():
    assert DOCS.read_text() == markdown(), (
        "docs/config.md is out of date: run `scale-lth config schema > docs/config.md`"
    )


def test_every_setting_is_listed_once_with_its_default(capsys):
    defaults = load(None).flat()
    listed = settings()
    assert [s.key for s in listed] == list(dict.fromkeys(s.key for s in listed))
    assert {s.key: s.default for s in listed} == {**defaults, "name": ""}  # load names it
    assert all(s.help for s in listed)
    hashed = {s.key: s.identity for s in listed}
    assert hashed["training.lr"] == "experiment" and hashed["replicates"] == "no"
    assert hashed["baselines.snip_batches"] == "method's runs"
    assert main(["config", "schema", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["key"] == "name"
