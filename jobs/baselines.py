"""Every baseline for the levels of an existing trunk: one task per branch, each running
`scale-lth branch NAME CONFIG --levels LEVELS` (the trunk must be finished for those levels).

    python jobs/baselines.py --config configs/imagenet_resnet50.yaml --levels 1-10
"""

import sys
from pathlib import Path

from scale_lth import methods
from scale_lth.orchestration.sweep import Task, parser, submit

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def main(argv=None) -> int:
    made = parser(__doc__.splitlines()[0])
    made.add_argument("--config", default=str(CONFIGS / "imagenet_resnet50.yaml"))
    made.add_argument("--levels", required=True, help="levels like 1-5,8")
    made.add_argument(
        "--branches",
        default=",".join(methods.baselines()),
        help="baselines, comma-separated (default: every baseline of the method registry)",
    )
    args = made.parse_args(argv)
    tasks = [
        Task(["branch", name], options=["--levels", args.levels])
        for name in args.branches.split(",")
    ]
    return submit(tasks, args.config, args)


if __name__ == "__main__":
    sys.exit(main())
