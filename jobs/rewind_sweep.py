"""How late must rewinding be? IMP on ResNet-50/ImageNet rewinding to k in {0, 1, 2, 4, 6, 10}
epochs (LTH at Scale, Fig. 7), one task per k, each with the config's replicates.

    python jobs/rewind_sweep.py replicates=3 launcher.partition=gpu launcher.nodes=2
    python jobs/rewind_sweep.py --config configs/imagenet_resnet50_fast.yaml --steps 0ep,2ep
"""

import sys
from pathlib import Path

from scale_lth.orchestration.sweep import Task, parser, submit

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def main(argv=None) -> int:
    made = parser(__doc__.splitlines()[0])
    made.add_argument("--config", default=str(CONFIGS / "imagenet_resnet50.yaml"))
    made.add_argument("--steps", default="0ep,1ep,2ep,4ep,6ep,10ep", help="rewind points")
    args = made.parse_args(argv)
    tasks = [Task(["lottery"], [f"rewinding.step={step}"]) for step in args.steps.split(",")]
    return submit(tasks, args.config, args)


if __name__ == "__main__":
    sys.exit(main())
