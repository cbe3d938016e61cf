"""docs/tutorial.md runs nothing of its own: each command in it names the test (or the demo)
that runs it, and that test exists and runs that command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands() -> list[tuple[str, str]]:
    """``(command, where it is run)`` for every line of the tutorial's bash blocks."""
    text = (ROOT / "docs" / "tutorial.md").read_text()
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.strip().splitlines():
            command, _, comment = line.partition("#")
            found.append((command.strip(), comment.strip()))
    return found


def what_runs(command: str) -> str:
    """The part of a command a test must hold: ``scale-lth <verb>``, a job script, a tool."""
    if "scale-lth" in command:
        return command.split("scale-lth", 1)[1].split()[0]
    if command.startswith("python jobs/"):
        return command.split()[1].removeprefix("jobs/")
    return command.split()[0].rsplit("/", 1)[-1]


def test_every_command_is_run_by_the_demo_or_the_test_it_names():
    found = commands()
    assert len(found) >= 10
    demo = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    for command, where in found:
        if where.startswith("the demo"):
            assert command == "make demo" or command.split("bin/", 1)[1] in demo, command
            continue
        assert where.startswith("tests/"), f"{command}: no test named"
        test = (ROOT / where.split()[0]).read_text()
        assert what_runs(command) in test, f"{where} does not run {what_runs(command)}"
