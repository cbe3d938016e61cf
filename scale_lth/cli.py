"""The ``scale-lth`` command: its verbs declared in one table (``VERBS``), the parser
built from it; what each verb does is in scale_lth.commands."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from scale_lth import methods
from scale_lth.commands import (
    branch,
    compare,
    config_schema,
    config_show,
    export_run,
    instability,
    lottery,
    plan,
    report,
    status,
    sync,
    train,
)
from scale_lth.errors import UserError, WorkerError

Arguments = tuple[tuple[str, ...], dict]  # add_argument's names and keywords


@dataclass(frozen=True)
class Verb:
    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    target: str = "config"  # config: CONFIG [overrides]; either: or a results folder; "": none
    before: tuple[Arguments, ...] = ()  # positional arguments before the target
    options: tuple[Arguments, ...] = ()
    trains: bool = False  # takes --quiet
    json: bool = False  # takes --json
    description: str | Callable[[], str] | None = None  # a callable: read when the parser is built


def _argument(*names: str, **keywords) -> Arguments:
    return names, keywords


TARGETS = {
    "config": "experiment YAML (see configs/)",
    "either": "experiment YAML, or an experiment's results folder",
}


def _add(verbs: argparse._SubParsersAction, verb: Verb) -> None:
    description = verb.description() if callable(verb.description) else verb.description
    parser = verbs.add_parser(verb.name, help=verb.help, description=description)
    for names, keywords in verb.before:
        parser.add_argument(*names, **keywords)
    if verb.target:
        parser.add_argument("config", help=TARGETS[verb.target])
        parser.add_argument(
            "overrides", nargs="*", metavar="key.sub=value", help="override config values"
        )
    for names, keywords in verb.options:
        parser.add_argument(*names, **keywords)
    if verb.trains:
        parser.add_argument("--quiet", action="store_true", help="log lines only, no progress bars")
    if verb.json:
        parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=verb.run)


LEVELS_HELP = (
    "only these levels, like 0-3,5 (default: every level; the levels before them must be finished)"
)


def baselines_description() -> str:
    """Every baseline of the method registry, with its one line of help."""
    described = (f"{name}: {methods.METHODS[name].summary}" for name in methods.baselines())
    return f"Baselines: {'; '.join(described)}."


VERBS = (
    Verb("train", "train the dense network (level 0) of a config", train, trains=True),
    Verb(
        "lottery",
        "IMP levels with rewinding, and the baselines at every level",
        lottery,
        options=(
            _argument("--levels", help=LEVELS_HELP),
            _argument("--trunk-only", action="store_true", help="the tickets only, no baselines"),
        ),
        trains=True,
    ),
    Verb(
        "instability",
        "instability analysis: is the dense network (from step k) or a level's subnetwork "
        "stable to SGD noise?",
        instability,
        options=(
            _argument("--steps", help="the dense network from each of these steps, like 0it,2ep"),
            _argument("--levels", help="each of these levels' subnetworks from its rewind point"),
        ),
        trains=True,
        description="Trains two copies from the same weights under different data orders and "
        "measures the error barrier on the straight path between them (instability.points "
        "points; stable: below instability.threshold). Every copy is a resumable run of the "
        "experiment, tracked like the others.",
    ),
    Verb(
        "branch",
        "train one baseline off an existing trunk",
        branch,
        before=(_argument("name", help="the baseline (see below)"),),
        options=(_argument("--levels", required=True, help="levels like 1-5,8"),),
        trains=True,
        description=baselines_description,
    ),
    Verb(
        "report",
        "table and plots of tickets against baselines at every sparsity",
        report,
        target="either",
        json=True,
    ),
    Verb(
        "compare",
        "overlay several experiments: one table, one plot, a legend of what differs",
        compare,
        target="",
        before=(_argument("experiments", nargs="+", metavar="CONFIG_OR_FOLDER [key.sub=value]"),),
        options=(
            _argument("--out", help="folder for the table and plot; default: beside the first"),
        ),
        json=True,
        description="Experiments are configs (each followed by its own key.sub=value "
        "overrides) or results folders, e.g. `scale-lth compare c.yaml c.yaml "
        "rewinding.mode=lr`.",
    ),
    Verb(
        "plan",
        "what the experiment costs before it runs: GPU-hours, critical path, wall time",
        plan,
        options=(
            _argument("--gpus", nargs="+", type=int, default=[8, 64, 256], help="GPU counts"),
            _argument("--images-per-second", type=float, help="measured training images/s per GPU"),
        ),
        json=True,
    ),
    Verb(
        "status",
        "what is finished, running, failed and waiting in an experiment, and its cost",
        status,
        target="either",
        json=True,
        description="Reads only the experiment's files: works while it runs and after a crash.",
    ),
    Verb("sync", "send MLflow what it missed while it was unreachable (kept on disk)", sync),
    Verb(
        "export",
        "a finished run's network as a file to deploy: a channel ticket physically smaller",
        export_run,
        target="",
        before=(
            _argument("run_folder", help="a run's folder: <experiment>/replicate_0/level_3/main"),
        ),
        options=(
            _argument(
                "--format",
                default="state_dict",
                choices=["state_dict", "torchscript", "onnx"],
                help="state_dict (for scale_lth.export.load), torchscript or onnx",
            ),
            _argument("--out", help="folder to write to; default: the run's export/"),
        ),
        description="A ticket of pruning.granularity: channel is written with its removed "
        "channels taken out (its outputs equal the masked network's); any other run as trained, "
        "its masked weights as CSR matrices in the state_dict format. With tracking, the network "
        "is also logged to the run's MLflow run as a PyTorch model.",
    ),
)


CONFIG_VERBS = (
    Verb("show", "print the resolved config and its hash", config_show, json=True),
    Verb(
        "schema",
        "every setting: type, default, rule, identity, help (docs/config.md)",
        config_schema,
        target="",
        json=True,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    from scale_lth.data.cli import add_write_parser

    parser = argparse.ArgumentParser(
        prog="scale-lth",
        description="Find and study lottery tickets: IMP with late resetting, baselines, at scale.",
    )
    verbs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data = verbs.add_parser("data", help="write datasets as FFCV .beton files")
    add_write_parser(data.add_subparsers(dest="data_command", required=True, metavar="ACTION"))
    for verb in VERBS:
        _add(verbs, verb)
    config = verbs.add_parser("config", help="inspect configs")
    actions = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    for verb in CONFIG_VERBS:
        _add(actions, verb)
    return parser


def run(argv: Sequence[str]) -> int:
    """Parse and run a command; bad input raises UserError (ConfigError, DataError)."""
    args = build_parser().parse_args(argv)
    return args.func(args)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: bad input is one line on stderr and exit code 2; a failure inside
    the workers is one line and exit code 1."""
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except UserError as error:
        print(f"scale-lth: error: {error}", file=sys.stderr)
        return 2
    except WorkerError as error:
        print(f"scale-lth: error: {error}", file=sys.stderr)
        return 1


def console() -> NoReturn:
    """The ``scale-lth`` command: ``main``, then the process ends without the interpreter's
    teardown of every module (seconds once torch, Ray and MLflow are loaded). The exit handlers
    run first (Ray's shutdown, logging's flush, temporary folders' removal) and the output is
    flushed; every file of an experiment was closed and synced when it was written."""
    code = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console()
