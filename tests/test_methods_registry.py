"""Every method is declared once, in scale_lth.methods: a method added there is accepted by
the config's validation, listed by the command line's help, placed in the report's table by
the registry's order and labelled in its plots by the registry's label."""

import pytest

from scale_lth import methods
from scale_lth.cli import build_parser
from scale_lth.config import ConfigError, load
from scale_lth.lottery.graph import runs_read
from scale_lth.report.plots import lines
from scale_lth.report.table import Row, format_table
from scale_lth.results import RunKey

DUMMY = methods.Method(
    "dummy",
    "a dummy baseline",
    "the ticket's mask on the init weights",
    methods.Start("init", "ticket", "zero"),
)


@pytest.fixture
def registry_with_a_dummy(monkeypatch):
    monkeypatch.setitem(methods.METHODS, "dummy", DUMMY)


def row(level: int, branch: str, density: float) -> Row:
    return Row(level, branch, density, 0.9, 0.0, 10.0, 0.9, 1, "test")


def test_without_the_entry_the_name_is_refused():
    with pytest.raises(ConfigError, match="'baselines.branches' must be one of"):
        load(None, ["baselines.branches=[dummy]"])


def test_a_method_added_to_the_registry_is_known_everywhere(registry_with_a_dummy):
    assert load(None, ["baselines.branches=[reinit, dummy]"]).baselines.branches == [
        "reinit",
        "dummy",
    ]
    help_text = build_parser()._subparsers._group_actions[0].choices["branch"].format_help()
    assert "dummy" in help_text and "the ticket's mask on the init weights" in help_text
    rows = [row(0, "main", 1.0), row(1, "dummy", 0.8), row(1, "main", 0.8), row(1, "snip", 0.8)]
    header = format_table(rows).splitlines()[0].split()
    assert header[2:] == ["main", "snip", "dummy"]  # the registry's order: dummy came last
    labels = [line.label for line in lines(rows, "accuracy_mean", "accuracy_std")]
    assert labels == ["winning ticket (IMP)", "SNIP", "a dummy baseline"]


def test_what_a_start_needs_names_the_trunk_runs_it_reads():
    """A run reads its mask from its source level's final weights, and level 0's step-0 or
    step-k weights where its start uses them."""
    trained = methods.Start("trained", "ticket", "rewind")  # also step k, kept with level 0
    assert runs_read(trained, RunKey(0, 3), "iterative") == {RunKey(0, 2), RunKey(0, 0)}
    assert runs_read(trained, RunKey(0, 3), "oneshot") == {RunKey(0, 0)}
    snip = methods.METHODS["snip"].start
    assert runs_read(snip, RunKey(1, 2), "iterative") == {RunKey(1, 1), RunKey(1, 0)}
    assert runs_read(methods.METHODS["reinit"].start, RunKey(0, 2), "iterative") == {RunKey(0, 1)}
    assert runs_read(trained, RunKey(0, 0), "iterative") == set()
