"""The run graph's schedule and the orchestration's cost, on this machine's CPUs.

A digits experiment (LeNet-300-100, 3 levels x 3 baselines, one replicate) is run by
`scale-lth lottery` with two run slots (`scaling.parallelism: runs`, two workers) and with one
(sequential), interleaved, several rounds, each in a fresh folder:

- ``schedule``: the median makespan (first run's first step to the last run's last) of the
  sequential runs over that of the two slots (target >= 1.6), and the two slots' makespan over
  the critical path (the trunk's runs one after another); its profile: a run's mean length
  alone and beside another, and the best makespan the graph allows in run lengths;
- ``orchestration``: the fraction of the command's wall time in which no run was in its
  training or evaluation steps, with two slots (target <= 0.10), and where that time went
  (before the first step, after the last).

Both runs must end with the same results (they are compared). Writes its keys into
bench/results.json (or ``--out``) and prints them. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scale_lth.config import load
from scale_lth.driver import training_seconds
from scale_lth.results import Layout

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "configs" / "digits_lenet.yaml")
RESULTS = Path(__file__).with_name("results.json")
EXPERIMENT = [
    "pruning.levels=3",
    "baselines.branches=[reinit,random_prune,snip]",
    "replicates=1",
    "training.duration=1500it",
    "tracking.enabled=false",
    "scaling.parallelism=runs",
]
# The 13 runs of equal length on two slots can end no sooner than 7 run lengths: level 0's
# ticket runs alone, then each later ticket beside one baseline, and the 6 baselines left in
# pairs. So the speed-up over one slot is at most 13/7 = 1.86 with runs as fast as alone.
BEST_TWO_SLOT_MAKESPAN = 7


def lottery(folder: Path, workers: int) -> dict:
    overrides = [*EXPERIMENT, f"scaling.num_workers={workers}", f"output_root={folder}"]
    command = [str(Path(sys.executable).with_name("scale-lth")), "lottery", CONFIG]
    started = time.perf_counter()
    subprocess.run(
        [*command, *overrides, "--quiet"],
        cwd=folder.parent, check=True, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    ended = time.time()
    layout = Layout(load(CONFIG, overrides).experiment_dir)
    runs = {key: layout.read_metrics(key) for key in layout.finished()}
    first = min(run["trained_from"] for run in runs.values())
    last = max(run["trained_until"] for run in runs.values())
    trunk = [run for key, run in runs.items() if key.branch == "main"]
    return {
        "wall": wall,
        "makespan": last - first,
        "critical_path": sum(run["trained_until"] - run["trained_from"] for run in trunk),
        "in_steps": training_seconds(list(runs.values())),
        "before_first_step": first - (ended - wall),
        "after_last_step": ended - last,
        "run_seconds": statistics.mean(
            run["trained_until"] - run["trained_from"] for run in runs.values()
        ),
        "accuracies": {str(key): run["final_accuracy"] for key, run in sorted(runs.items())},
    }


def bench(rounds: int) -> dict:
    measured: dict[int, list[dict]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="scale-lth-bench-") as folder:
        for round_ in range(rounds):
            for workers in (2, 1):
                measured[workers].append(lottery(Path(folder) / f"{workers}-{round_}", workers))
    slots, sequential = measured[2], measured[1]
    if slots[0]["accuracies"] != sequential[0]["accuracies"]:
        raise RuntimeError("two slots and one ended with different accuracies")
    median = lambda runs, name: statistics.median(run[name] for run in runs)  # noqa: E731
    wall = median(slots, "wall")
    return {
        "schedule": {
            "runs": len(slots[0]["accuracies"]),
            "rounds": rounds,
            "makespan_two_slots_seconds": median(slots, "makespan"),
            "makespan_sequential_seconds": median(sequential, "makespan"),
            "speedup_two_slots": median(sequential, "makespan") / median(slots, "makespan"),
            "makespan_over_critical_path": median(slots, "makespan")
            / median(slots, "critical_path"),
            "profile": {
                "run_seconds_sequential": median(sequential, "run_seconds"),
                "run_seconds_two_slots": median(slots, "run_seconds"),
                "best_two_slot_makespan_in_runs": BEST_TWO_SLOT_MAKESPAN,
            },
        },
        "orchestration": {
            "wall_seconds": wall,
            "fraction_not_in_steps": 1 - median(slots, "in_steps") / wall,
            "seconds_before_the_first_step": median(slots, "before_first_step"),
            "seconds_after_the_last_step": median(slots, "after_last_step"),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    results = bench(arguments.rounds)
    kept = json.loads(arguments.out.read_text()) if arguments.out.is_file() else {}
    arguments.out.write_text(json.dumps({**kept, **results}, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
