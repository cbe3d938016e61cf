"""An experiment's run graph as SLURM jobs chained by `afterok`: a job per trunk level, after
the level its mask is cut from, and an array of the level's baselines after that same level
(so they train beside the level's ticket). For clusters where many small jobs schedule
sooner than one large allocation; inside one allocation `scale-lth lottery` schedules the
same graph itself.

    python jobs/lottery_graph.py configs/imagenet_resnet50.yaml launcher.partition=gpu
    python jobs/lottery_graph.py configs/smoke.yaml --wait launcher.partition=debug

Each job is `scale-lth lottery CONFIG --levels L --trunk-only` or
`scale-lth branch NAME CONFIG --levels L`: finished runs are skipped, so submitting again
after a failure trains only what is missing.
"""

import sys

from scale_lth.config import load
from scale_lth.errors import UserError
from scale_lth.lottery.graph import Reads
from scale_lth.orchestration.sweep import Task, parser, prepare, submit_array, wait_for_all
from scale_lth.results import RunKey


def main(argv=None) -> int:
    args = parser(__doc__.splitlines()[0], config=True).parse_args(argv)
    try:
        config = load(args.config, args.overrides)
        levels = range(config.pruning.levels + 1)
        trunk = {level: Task(["lottery"], options=["--levels", str(level), "--trunk-only"])
                 for level in levels}  # fmt: skip
        baselines = {
            level: [
                Task(["branch", name], options=["--levels", str(level)])
                for name in config.baselines.branches
            ]  # fmt: skip
            for level in levels[1:]
        }
        configs, runner = prepare(args.config, args, [trunk[0]])
        if runner.cluster != "slurm":
            raise UserError(
                "jobs/lottery_graph.py chains SLURM jobs; without SLURM run "
                f"`scale-lth lottery {args.config}`, which schedules the same graph itself"
            )
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    reads = Reads.of(config)
    submitted, jobs = [], {}

    def after(keys: list[RunKey]) -> list:
        """The job of the latest level these runs read (the levels before it come first)."""
        read = {run.level for key in keys for run in reads(key)}
        return [jobs[max(read)]] if read else []

    for level in levels:
        ticket = after([RunKey(0, level)])
        [jobs[level]] = submit_array(runner, [trunk[level]], args.config, args, ticket)
        submitted.append((jobs[level], trunk[level]))
        if baselines.get(level):
            keys = [RunKey(0, level, config.run_branch(m)) for m in config.baselines.branches]
            array = submit_array(runner, baselines[level], args.config, args, after(keys))
            submitted += zip(array, baselines[level], strict=True)
    for job, task in submitted:
        print(f"{job.job_id}  {task.command[0]} {task.label()}")
    print(f"{len(submitted)} jobs -> {configs[0].experiment_dir}")
    print(f"Logs: {configs[0].launcher.log_dir}/<job id>/")
    if not args.wait:
        return 0
    return wait_for_all(*zip(*submitted, strict=True))


if __name__ == "__main__":
    sys.exit(main())
