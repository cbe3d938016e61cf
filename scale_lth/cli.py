"""The ``scale-lth`` command: one subcommand per verb a researcher needs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from scale_lth import methods
from scale_lth.config import Config, load
from scale_lth.config.duration import Duration
from scale_lth.errors import UserError, WorkerError


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The CONFIG path and trailing ``key.sub=value`` overrides every experiment verb takes."""
    parser.add_argument("config", help="experiment YAML (see configs/)")
    parser.add_argument(
        "overrides", nargs="*", metavar="key.sub=value", help="override config values"
    )


def _config_show(args: argparse.Namespace) -> int:
    config = load(args.config, args.overrides)
    if args.json:
        print(json.dumps(config.flat(), indent=2))
    else:
        width = max(len(key) for key in config.flat())
        for key, value in config.flat().items():
            print(f"{key:<{width}}  {value}")
    print(f"# hash {config.hash} -> {config.experiment_dir}", file=sys.stderr)
    return 0


def _config_schema(args: argparse.Namespace) -> int:
    from scale_lth.config.reference import markdown, settings

    if args.json:
        print(json.dumps([dataclasses.asdict(s) for s in settings()], indent=1))
    else:
        print(markdown(), end="")
    return 0


def _train(args: argparse.Namespace) -> int:
    from scale_lth.driver import run_job
    from scale_lth.lottery.job import Job

    config = load(args.config, args.overrides)
    run_job(config, Job(replicates=range(config.replicates), levels=[0]), quiet=args.quiet)
    return 0


def _lottery(args: argparse.Namespace) -> int:
    from scale_lth.driver import run_job
    from scale_lth.lottery.job import Job

    config = load(args.config, args.overrides)
    job = Job.lottery(config)
    if args.levels:
        job = dataclasses.replace(job, levels=configured_levels(config, args.levels, lowest=0))
    if args.trunk_only:
        job = dataclasses.replace(job, branches=[])
    run_job(config, job, quiet=args.quiet)
    return 0


def configured_levels(config: Config, text: str, lowest: int) -> list[int]:
    """``--levels`` parsed, each one within ``pruning.levels``."""
    levels = parse_levels(text, lowest)
    beyond = [level for level in levels if level > config.pruning.levels]
    if beyond:
        raise UserError(
            f"--levels {text}: level {beyond[0]} is beyond pruning.levels "
            f"{config.pruning.levels}; raise pruning.levels or name fewer levels"
        )
    return levels


def _stability(args: argparse.Namespace) -> int:
    from scale_lth.driver import run_job
    from scale_lth.lottery.job import Job

    config = load(args.config, args.overrides)
    if not args.steps and not args.levels:
        raise UserError(
            "stability needs --steps (like 0it,100it,2ep), --levels (like 1-3), or both"
        )
    steps = parse_steps(args.steps) if args.steps else []
    levels = configured_levels(config, args.levels, lowest=1) if args.levels else []
    stability = dataclasses.replace(config.stability, steps=[*config.stability.steps, *steps])
    config = dataclasses.replace(config, stability=stability)  # the dense run saves them
    run_job(config, Job.instability(config, [str(step) for step in steps], levels), args.quiet)
    return 0


def parse_steps(text: str) -> list[Duration]:
    """``'0it,100it,2ep'`` -> those durations, each once, in the order given."""
    try:
        steps = [Duration.parse(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--steps: write steps like 0it,100it,2ep, got {text!r}") from None
    return list(dict.fromkeys(steps))


def parse_levels(text: str, lowest: int = 1) -> list[int]:
    """``'1-5,8'`` -> ``[1, 2, 3, 4, 5, 8]`` (baselines exist from level 1, tickets from 0)."""
    levels: set[int] = set()
    for part in text.split(","):
        low, sep, high = part.strip().partition("-")
        try:
            bounds = (int(low), int(high) if sep else int(low))
        except ValueError:
            raise UserError(f"--levels: write levels like 1-5,8, got {text!r}") from None
        if bounds[0] < lowest or bounds[1] < bounds[0]:
            what = "baselines exist from level 1" if lowest else "levels count from 0"
            raise UserError(f"--levels: {what} up, got {part!r}")
        levels.update(range(bounds[0], bounds[1] + 1))
    return sorted(levels)


def _branch(args: argparse.Namespace) -> int:
    from scale_lth.driver import run_job
    from scale_lth.lottery.job import Job

    config = load(args.config, args.overrides)
    if args.name not in methods.baselines():
        known = ", ".join(methods.baselines())
        raise UserError(f"no baseline named '{args.name}'; known: {known}")
    levels = parse_levels(args.levels)
    job = Job(range(config.replicates), levels, [config.run_branch(args.name)], trunk=False)
    run_job(config, job, quiet=args.quiet)
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scale_lth.report import write_report

    target = Path(args.config)
    if target.is_dir():
        if args.overrides:
            raise UserError("overrides apply to a CONFIG, not to an experiment folder")
        root, title = target, target.name
    else:
        config = load(args.config, args.overrides)
        root, title = config.experiment_dir, f"{config.name} ({config.hash})"
    if not root.is_dir():
        raise UserError(f"no results in {root}: run `scale-lth lottery {args.config}` first")
    report = write_report(root, title)
    if not report.rows:
        raise UserError(f"no finished runs in {root} yet")
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print(report.text())
    print(f"Plots: {', '.join(str(path) for path in report.plots)}", file=sys.stderr)
    return 0


def comparison_items(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``a.yaml k=v b_folder c.yaml`` -> ``[(a.yaml, [k=v]), (b_folder, []), (c.yaml, [])]``:
    overrides apply to the config before them."""
    groups: list[tuple[str, list[str]]] = []
    for item in items:
        if "=" in item and not item.endswith((".yaml", ".yml")):
            if not groups:
                raise UserError(f"{item}: an override follows the CONFIG it changes")
            groups[-1][1].append(item)
        else:
            groups.append((item, []))
    return groups


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    import yaml

    from scale_lth.config.hashing import identity_keys
    from scale_lth.config.schema import Config
    from scale_lth.driver import absolute_paths
    from scale_lth.report.compare import (
        compared,
        comparison_id,
        format_comparison,
        legends,
        write_comparison,
    )
    from scale_lth.results import Layout
    from scale_lth.tracking.experiment import experiment_name
    from scale_lth.tracking.reports import log_comparison
    from scale_lth.tracking.uri import tracking_uri

    items = comparison_items(args.experiments)
    if len(items) < 2:
        raise UserError("compare needs two experiments or more (configs or results folders)")
    keys = identity_keys(Config)
    experiments, settings = [], []
    for target, overrides in items:
        if Path(target).is_dir():
            if overrides:
                raise UserError(f"{target}: overrides apply to a CONFIG, not to a results folder")
            root = Path(target)
            if not Layout(root).config_path.is_file():
                raise UserError(f"{target} holds no experiment (no config.yaml): name its folder")
            flat = yaml.safe_load(Layout(root).config_path.read_text())
        else:
            config = absolute_paths(load(target, overrides))
            root, flat = config.experiment_dir, config.flat()
            flat["tracking.uri"] = tracking_uri(config)
            flat["tracking.experiment"] = experiment_name(config)
        experiment = compared(root, {key: flat.get(key) for key in sorted(keys)})
        if not experiment.rows:
            raise UserError(f"no finished runs in {root}: run `scale-lth lottery` on it first")
        experiments.append(experiment)
        settings.append(flat)
    comparison = comparison_id(experiments)
    out = Path(args.out) if args.out else experiments[0].root.parent / f"compare-{comparison}"
    paths = write_comparison(experiments, out)
    print(json.dumps(json.loads(paths[0].read_text()), indent=1) if args.json else
          format_comparison(experiments))  # fmt: skip
    print(f"Comparison: {', '.join(str(path) for path in paths)}", file=sys.stderr)
    first = settings[0]
    if first.get("tracking.enabled") and first.get("tracking.uri"):
        named = dict(zip((e.root.name for e in experiments), legends(experiments), strict=True))
        logged = log_comparison(
            first["tracking.uri"], first["tracking.experiment"], comparison, named, paths
        )
        print(logged, file=sys.stderr)
    return 0


def _plan(args: argparse.Namespace) -> int:
    from scale_lth.plan import plan

    config = load(args.config, args.overrides)
    if args.images_per_second is None or args.images_per_second <= 0:
        raise UserError(
            "plan needs a measured training throughput: pass --images-per-second (images per "
            "second per GPU for this model and resolution, e.g. from bench/gpu_throughput.py)"
        )
    if min(args.gpus) < 1:
        raise UserError(f"--gpus {min(args.gpus)}: GPU counts are 1 or more")
    result = plan(config, args.gpus, args.images_per_second)
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=1))
    else:
        print("\n".join(result.lines(f"{config.name} ({config.hash})")))
    return 0


def _status(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scale_lth.driver import absolute_paths
    from scale_lth.status import config_of, experiment_status

    target = Path(args.config)
    if target.is_dir():
        if args.overrides:
            raise UserError("overrides apply to a CONFIG, not to an experiment folder")
        if not (target / "config.yaml").is_file():
            raise UserError(f"{target} holds no experiment (no config.yaml): name its folder")
        config, root = config_of(target), target
    else:
        config = absolute_paths(load(args.config, args.overrides))
        root = config.experiment_dir
    status = experiment_status(config, root)
    print(json.dumps(status.as_dict(), indent=1) if args.json else "\n".join(status.lines()))
    return 0


def _sync(args: argparse.Namespace) -> int:
    from scale_lth import preflight
    from scale_lth.driver import absolute_paths
    from scale_lth.tracking.experiment import prepare_tracking
    from scale_lth.tracking.tracker import sync
    from scale_lth.tracking.uri import tracking_uri

    config = absolute_paths(load(args.config, args.overrides))
    if not config.tracking.enabled:
        raise UserError("tracking.enabled is false: there is nothing to send")
    preflight.check_tracking(config, tracking_uri(config), fallback=False)
    config = prepare_tracking(config)
    left = sync(config)
    if left:
        print(f"{left} tracking events are still waiting: MLflow stopped answering")
        return 1
    print(f"MLflow at {config.tracking.uri} has every tracking event")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from scale_lth.data.cli import add_write_parser

    parser = argparse.ArgumentParser(
        prog="scale-lth",
        description="Find and study lottery tickets: IMP with late resetting, baselines, at scale.",
    )
    verbs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = verbs.add_parser("data", help="write datasets as FFCV .beton files")
    add_write_parser(data.add_subparsers(dest="data_command", required=True, metavar="ACTION"))

    train = verbs.add_parser("train", help="train the dense network (level 0) of a config")
    add_config_arguments(train)
    train.add_argument("--quiet", action="store_true", help="log lines only, no progress bars")
    train.set_defaults(func=_train)

    lottery = verbs.add_parser(
        "lottery", help="IMP levels with rewinding, and the baselines at every level"
    )
    add_config_arguments(lottery)
    lottery.add_argument(
        "--levels",
        help="only these levels, like 0-3,5 (default: every level; the levels "
        "before them must be finished)",
    )
    lottery.add_argument("--trunk-only", action="store_true", help="the tickets only, no baselines")
    lottery.add_argument("--quiet", action="store_true", help="log lines only, no progress bars")
    lottery.set_defaults(func=_lottery)

    stability = verbs.add_parser(
        "stability",
        help="instability analysis: is the dense network (from step k) or a level's subnetwork "
        "stable to SGD noise?",
        description="Trains two copies from the same weights under different data orders and "
        "measures the error barrier on the straight path between them (stability.points "
        "points; stable: below stability.threshold). Every copy is a resumable run of the "
        "experiment, tracked like the others.",
    )
    add_config_arguments(stability)
    stability.add_argument(
        "--steps", help="the dense network from each of these steps, like 0it,100it,2ep"
    )
    stability.add_argument(
        "--levels", help="each of these levels' subnetworks from its rewind point, like 1-3"
    )
    stability.add_argument("--quiet", action="store_true", help="log lines only, no progress bars")
    stability.set_defaults(func=_stability)

    branch = verbs.add_parser(
        "branch",
        help="train one baseline off an existing trunk",
        description="Baselines: "
        + "; ".join(f"{m.name}: {m.summary}" for m in map(methods.METHODS.get, methods.baselines()))
        + ".",
    )
    branch.add_argument("name", help=f"the baseline: {', '.join(methods.baselines())}")
    add_config_arguments(branch)
    branch.add_argument("--levels", required=True, help="levels like 1-5,8")
    branch.add_argument("--quiet", action="store_true", help="log lines only, no progress bars")
    branch.set_defaults(func=_branch)

    report = verbs.add_parser(
        "report", help="table and plots of tickets against baselines at every sparsity"
    )
    report.add_argument("config", help="experiment YAML, or an experiment's results folder")
    report.add_argument(
        "overrides", nargs="*", metavar="key.sub=value", help="override config values"
    )
    report.add_argument(
        "--json", action="store_true", help="print the table's rows and the mask analytics as JSON"
    )
    report.set_defaults(func=_report)

    compare = verbs.add_parser(
        "compare",
        help="overlay several experiments: one table, one plot, a legend of what differs",
        description="Experiments are configs (each followed by its own key.sub=value overrides) "
        "or results folders, e.g. `scale-lth compare c.yaml c.yaml rewinding.mode=lr`.",
    )
    compare.add_argument("experiments", nargs="+", metavar="CONFIG_OR_FOLDER [key.sub=value]")
    compare.add_argument("--json", action="store_true", help="print the table as JSON rows")
    compare.add_argument("--out", help="folder for the table and plot; default: beside the first")
    compare.set_defaults(func=_compare)

    plan = verbs.add_parser(
        "plan",
        help="what the experiment costs before it runs: GPU-hours, critical path, wall time",
    )
    add_config_arguments(plan)
    plan.add_argument(
        "--gpus", nargs="+", type=int, default=[8, 64, 256], help="GPU counts to plan for"
    )
    plan.add_argument("--images-per-second", type=float, help="measured training images/s per GPU")
    plan.add_argument("--json", action="store_true", help="print JSON")
    plan.set_defaults(func=_plan)

    status = verbs.add_parser(
        "status",
        help="what is finished, running, failed and waiting in an experiment, and its cost",
        description="Reads only the experiment's files: works while it runs and after a crash.",
    )
    status.add_argument("config", help="experiment YAML, or an experiment's results folder")
    status.add_argument(
        "overrides", nargs="*", metavar="key.sub=value", help="override config values"
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=_status)

    sync = verbs.add_parser(
        "sync", help="send MLflow what it missed while it was unreachable (kept on disk)"
    )
    add_config_arguments(sync)
    sync.set_defaults(func=_sync)

    config = verbs.add_parser("config", help="inspect configs")
    config_verbs = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = config_verbs.add_parser("show", help="print the resolved config and its hash")
    add_config_arguments(show)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_config_show)
    schema = config_verbs.add_parser(
        "schema", help="every setting: type, default, rule, identity, help (docs/config.md)"
    )
    schema.add_argument("--json", action="store_true", help="print JSON")
    schema.set_defaults(func=_config_schema)
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


if __name__ == "__main__":
    sys.exit(main())
