"""A tiny sweep for tests and first steps: configs/smoke.yaml at seeds 0 and 1 (two tasks).

python jobs/smoke_sweep.py --wait launcher.partition=debug
python jobs/smoke_sweep.py --cluster local --wait
"""

import sys
from pathlib import Path

from scale_lth.orchestration.sweep import Task, parser, submit

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml")


def main(argv=None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    tasks = [Task(["lottery"], [f"seed={seed}"]) for seed in (0, 1)]
    return submit(tasks, CONFIG, args)


if __name__ == "__main__":
    sys.exit(main())
