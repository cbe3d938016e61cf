"""The `scale-lth` command: its verbs, their help, and one-line failures with exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from scale_lth.cli import build_parser, main
from scale_lth.commands import parse_levels

VERBS = [
    "branch", "compare", "config", "data", "instability", "lottery", "plan", "report", "status",
    "sync", "train",
]  # fmt: skip
SCALE_LTH = Path(sys.executable).with_name("scale-lth")
SMOKE = str(Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml")


def test_help_lists_every_verb(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for verb in VERBS:
        assert verb in out


@pytest.mark.parametrize(
    "words", [[verb] for verb in VERBS] + [["data", "write"], ["config", "show"]]
)
def test_every_verb_has_help(words, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*words, "--help"])
    assert exit_.value.code == 0
    assert "usage: scale-lth" in capsys.readouterr().out


# The same errors given as overrides: tests/test_bad_input.py (unknown-key, wrong-type,
# bad-duration).
@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ("training:\n  lrr: 0.1\n", "unknown key 'training.lrr'"),
        ("training:\n  lr: fast\n", "'training.lr' must be a float"),
        ("training:\n  duration: 12xx\n", "'training.duration'"),
    ],
)
@pytest.mark.parametrize("verb", ["train", "lottery"])
def test_a_bad_config_file_exits_2_with_one_line_and_writes_nothing(
    tmp_path, monkeypatch, capsys, yaml_text, fragment, verb
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.yaml").write_text(yaml_text)
    before = sorted(tmp_path.rglob("*"))
    assert main([verb, "exp.yaml"]) == 2
    stderr = capsys.readouterr().err
    assert fragment in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.integration  # the installed console script, as users run it
def test_the_console_script_prints_one_line_and_exits_2(tmp_path):
    result = subprocess.run(
        [SCALE_LTH, "lottery", SMOKE, "pruning.levles=3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("scale-lth: error: ")
    assert "unknown key 'pruning.levles'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_config_show_prints_the_resolved_config_and_hash(capsys):
    assert main(["config", "show", SMOKE, "training.lr=0.5"]) == 0
    captured = capsys.readouterr()
    assert "training.lr" in captured.out and "0.5" in captured.out
    assert "hash" in captured.err


def test_levels_are_parsed_as_ranges_and_lists():
    assert parse_levels("1-5,8") == [1, 2, 3, 4, 5, 8]
    assert parse_levels("3") == [3]


@pytest.mark.parametrize("text", ["0-2", "a-b", "5-3"])
def test_bad_levels_are_one_line_errors(text, capsys):
    assert main(["branch", "reinit", SMOKE, "--levels", text]) == 2
    assert "--levels" in capsys.readouterr().err
