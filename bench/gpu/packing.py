"""Runs packed onto one GPU: a lottery's makespan with 1, 2, 4 and 8 runs per GPU.

configs/cifar10_resnet20.yaml (CIFAR's ResNet-20 at 32 px) on synthetic CIFAR-sized data written
once, shrunk to 2 replicates of 3 levels with its three baselines and a few hundred steps a run
(26 runs; once a level's two tickets end, the next level's 8 runs are ready), is run by
`scale-lth lottery` with ``parallelism: runs`` and k workers sharing the GPU
(``scaling.gpus_per_worker`` 1/k, the machine's cores split between them), each k in a fresh
folder. Per k: the makespan (first run's first step to the last run's last, from the runs'
metrics, as bench/schedule.py measures it), the sum of the runs' lengths (it grows as packed
runs slow each other down), the command's wall time, and the speed-up (the first k's makespan
over this one's). Written to ``--out`` after each k, so a step stopped at its limit keeps the ks
it measured, and printed. Needs a CUDA device: bench/gpu/check.sh's step ``packing`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scale_lth.config import load
from scale_lth.results import Layout

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs" / "cifar10_resnet20.yaml")
SCALE_LTH = [sys.executable, "-m", "scale_lth"]
SIZES = "10000,1000,1000"  # synthetic train, val, test images: 32 px, 10 classes
EXPERIMENT = [
    "data.dataset=synthetic",
    "replicates=2",
    "pruning.levels=3",
    "tracking.enabled=false",
    "scaling.use_gpu=true",
    "scaling.parallelism=runs",
]


def lottery(folder: Path, data: Path, runs_per_gpu: int, steps: int) -> dict:
    overrides = [
        *EXPERIMENT,
        f"data.path={data}",
        f"training.duration={steps}it",
        f"scaling.num_workers={runs_per_gpu}",
        f"scaling.gpus_per_worker={1 / runs_per_gpu}",
        f"scaling.cpus_per_worker={max(1, len(os.sched_getaffinity(0)) // runs_per_gpu)}",
        f"output_root={folder}",
    ]
    folder.mkdir()
    started = time.perf_counter()
    subprocess.run([*SCALE_LTH, "lottery", CONFIG, *overrides, "--quiet"], cwd=folder, check=True)
    wall = time.perf_counter() - started
    layout = Layout(load(CONFIG, overrides).experiment_dir)
    runs = [layout.read_metrics(key) for key in layout.finished()]
    return {
        "runs": len(runs),
        "makespan_seconds": max(run["trained_until"] for run in runs)
        - min(run["trained_from"] for run in runs),
        "run_seconds_sum": sum(run["trained_until"] - run["trained_from"] for run in runs),
        "wall_seconds": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-per-gpu", default="1,2,4,8", help="the ks, comma-separated")
    parser.add_argument("--steps", type=int, default=200, help="training steps a run")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "gpu-out" / "packing.json")
    arguments = parser.parse_args()
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="scale-lth-packing-") as temporary:
        data = Path(temporary) / "synthetic"
        write = ["data", "write", "--source", "synthetic", "--sizes", SIZES, "--out", str(data)]
        subprocess.run([*SCALE_LTH, *write], check=True)
        for k in (int(part) for part in arguments.runs_per_gpu.split(",")):
            measured = lottery(Path(temporary) / f"k{k}", data, k, arguments.steps)
            first = next(iter(results.values()), measured)
            results[str(k)] = {
                **measured,
                "speedup": first["makespan_seconds"] / measured["makespan_seconds"],
            }
            arguments.out.write_text(json.dumps({"packing": results}, indent=2) + "\n")
    print(json.dumps({"packing": results}, indent=2))


if __name__ == "__main__":
    main()
