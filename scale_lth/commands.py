"""What each verb of the ``scale-lth`` command does (the parser is scale_lth.cli): read the
arguments into a config and a job, and hand them to the driver, the report or the planner."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from scale_lth import methods
from scale_lth.config import Config, load, load_saved
from scale_lth.config.duration import Duration
from scale_lth.errors import UserError
from scale_lth.results import Layout


def experiment_from(target: str, overrides: Sequence[str]) -> tuple[Config, Path]:
    """A CONFIG with its overrides, or an experiment's results folder: the experiment's
    config (paths resolved against this folder) and the folder of its results."""
    folder = Path(target)
    if not folder.is_dir():
        config = load(target, overrides).resolved()
        return config, config.experiment_dir
    if overrides:
        raise UserError(f"{target}: overrides apply to a CONFIG, not to a results folder")
    layout = Layout(folder)
    if not layout.config_path.is_file():
        raise UserError(f"{target} holds no experiment (no config.yaml): name its folder")
    return load_saved(layout.config_path), folder


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


def parse_steps(text: str) -> list[Duration]:
    """``'0it,100it,2ep'`` -> those durations, each once, in the order given."""
    try:
        steps = [Duration.parse(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--steps: write steps like 0it,100it,2ep, got {text!r}") from None
    return list(dict.fromkeys(steps))


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


def export_run(args: argparse.Namespace) -> int:
    from scale_lth import export
    from scale_lth.errors import one_line

    export.require_exporter(args.format)
    layout, key = export.run_of(Path(args.run_folder))
    found = export.ticket(layout, key)
    path = export.export(found, args.format, Path(args.out) if args.out else layout.export_dir(key))
    what = "compacted channel ticket" if found.groups is not None else "network"
    parameters = sum(p.numel() for p in found.network.parameters())
    print(f"Exported {key}'s {what} ({parameters:,} parameters) to {path}")
    if found.config.tracking.enabled:
        from scale_lth.tracking.logged_models import log_exported

        try:
            uri = log_exported(found.config, key, export.traced(found))
        except Exception as error:  # the files are written: MLflow is a copy
            print(f"MLflow: not logged ({one_line(error)}); the exported files are written")
        else:
            print(f"MLflow: logged to the run as {uri} (register it from the run's page)")
    return 0


def train(args: argparse.Namespace) -> int:
    from scale_lth.driver import run_job
    from scale_lth.lottery.job import Job

    config = load(args.config, args.overrides)
    run_job(config, Job(replicates=range(config.replicates), levels=[0]), quiet=args.quiet)
    return 0


def lottery(args: argparse.Namespace) -> int:
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


def instability(args: argparse.Namespace) -> int:
    from scale_lth.driver import run_job
    from scale_lth.lottery.job import Job

    config = load(args.config, args.overrides)
    if not args.steps and not args.levels:
        raise UserError(
            "instability needs --steps (like 0it,100it,2ep), --levels (like 1-3), or both"
        )
    steps = parse_steps(args.steps) if args.steps else []
    levels = configured_levels(config, args.levels, lowest=1) if args.levels else []
    saved = dataclasses.replace(config.instability, steps=[*config.instability.steps, *steps])
    config = dataclasses.replace(config, instability=saved)  # the dense run saves them
    job = Job.instability_analysis(config, [str(step) for step in steps], levels)
    run_job(config, job, quiet=args.quiet)
    return 0


def branch(args: argparse.Namespace) -> int:
    from scale_lth.driver import run_job
    from scale_lth.lottery.job import Job

    config = load(args.config, args.overrides)
    if args.name not in methods.baselines():
        known = ", ".join(methods.baselines())
        raise UserError(f"no baseline named '{args.name}'; known: {known}")
    levels = configured_levels(config, args.levels, lowest=1)
    job = Job(range(config.replicates), levels, [config.run_branch(args.name)], trunk=False)
    run_job(config, job, quiet=args.quiet)
    return 0


def report(args: argparse.Namespace) -> int:
    from scale_lth.cost import write_costs
    from scale_lth.report import write_report

    config, root = experiment_from(args.config, args.overrides)
    if not root.is_dir():
        raise UserError(f"no results in {root}: run `scale-lth lottery {args.config}` first")
    write_costs(Layout(root))
    report = write_report(root, f"{config.name} ({config.hash})")
    if not report.rows:
        raise UserError(f"no finished runs in {root} yet")
    print(json.dumps(report.as_dict(), indent=1) if args.json else report.text())
    print(f"Plots: {', '.join(str(path) for path in report.plots)}", file=sys.stderr)
    return 0


def compare(args: argparse.Namespace) -> int:
    from scale_lth.report.compare import (
        compared,
        comparison_id,
        format_comparison,
        legends,
        table,
        write_comparison,
    )
    from scale_lth.tracking.experiment import experiment_name
    from scale_lth.tracking.reports import log_comparison
    from scale_lth.tracking.uri import credentials_moved, tracking_uri

    items = comparison_items(args.experiments)
    if len(items) < 2:
        raise UserError("compare needs two experiments or more (configs or results folders)")
    configs = [experiment_from(target, overrides) for target, overrides in items]
    experiments = [compared(config, root) for config, root in configs]
    comparison = comparison_id(experiments)
    out = Path(args.out) if args.out else experiments[0].root.parent / f"compare-{comparison}"
    paths = write_comparison(experiments, out)
    print(json.dumps(table(experiments), indent=1) if args.json else format_comparison(experiments))
    print(f"Comparison: {', '.join(str(path) for path in paths)}", file=sys.stderr)
    first = configs[0][0]
    if first.tracking.enabled:
        named = dict(zip((e.root.name for e in experiments), legends(experiments), strict=True))
        first = credentials_moved(first)
        uri, name = tracking_uri(first), experiment_name(first)
        curves = [(experiment_name(config), config.hash) for config, _ in configs]
        print(log_comparison(uri, name, comparison, named, paths, curves), file=sys.stderr)
    return 0


def plan(args: argparse.Namespace) -> int:
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
    title = f"{config.name} ({config.hash})"
    print(json.dumps(dataclasses.asdict(result), indent=1) if args.json else
          "\n".join(result.lines(title)))  # fmt: skip
    return 0


def status(args: argparse.Namespace) -> int:
    from scale_lth.status import experiment_status

    config, root = experiment_from(args.config, args.overrides)
    status = experiment_status(config, root)
    print(json.dumps(status.as_dict(), indent=1) if args.json else "\n".join(status.lines()))
    return 0


def sync(args: argparse.Namespace) -> int:
    from scale_lth.driver import sync

    config = load(args.config, args.overrides).resolved()
    if not config.tracking.enabled:
        raise UserError("tracking.enabled is false: there is nothing to send")
    return sync(config)


def config_show(args: argparse.Namespace) -> int:
    from scale_lth.tracking.uri import without_credentials

    config = load(args.config, args.overrides)
    flat = {key: without_credentials(value) for key, value in config.flat().items()}
    width = max(len(key) for key in flat)
    lines = [f"{key:<{width}}  {value}" for key, value in flat.items()]
    print(json.dumps(flat, indent=2) if args.json else "\n".join(lines))
    print(f"# hash {config.hash} -> {config.experiment_dir}", file=sys.stderr)
    return 0


def config_schema(args: argparse.Namespace) -> int:
    from scale_lth.config.reference import markdown, settings

    if args.json:
        print(json.dumps([dataclasses.asdict(s) for s in settings()], indent=1))
    else:
        print(markdown(), end="")
    return 0
