"""The instability analysis inside the workers ("Linear Mode Connectivity and the LTH"): the
measurement of the straight path between two copies trained from the same weights under
different SGD noise, and ``rewinding.step: auto``'s rule that reads those measurements.

A path measurement is a node of the run graph like a training run: it waits for its two copies,
evaluates ``instability.points`` evenly spaced interpolations of their final weights on the
training split and every evaluation split (scale_lth.training.interpolation), each a seeded
subsample of ``instability.train_examples`` / ``eval_examples`` examples, and writes them as its
``metrics.json``, with those counts. BatchNorm statistics are interpolated with the weights, as
in the paper.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

import torch

from scale_lth.results import InstabilityRun, Layout, RunKey, copies_of
from scale_lth.storage import load_torch
from scale_lth.training.evaluation import Batch
from scale_lth.training.interpolation import instability, path_errors, path_points
from scale_lth.training.session import Session

CHOICE_SPLITS = ("val", "test", "train")  # the split ``auto`` reads: held-out data first


def measure_path(
    layout: Layout,
    key: RunKey,
    model: torch.nn.Module,
    splits: Mapping[str, Iterable[Batch]],
    examples: Mapping[str, int],
    points: int,
    session: Session,
) -> None:
    """Evaluate the path between ``key``'s copies on ``splits`` (each rank its shard of the
    split's ``examples``) and write the errors and the instability of every split as ``key``'s
    results."""
    kind = key.kind
    if not isinstance(kind, InstabilityRun) or not kind.measures_path:
        raise ValueError(f"{key} measures no path")
    first, second = copies_of(key)
    began = time.time()
    errors = path_errors(
        model,
        load_torch(layout.final_path(first)),
        load_torch(layout.final_path(second)),
        splits,
        points,
        session.device,
        distributed=session.world_size > 1,
    )
    if session.is_chief:
        layout.write_metrics(
            key,
            {
                "replicate": key.replicate,
                "level": key.level,
                "at": kind.at,
                "step": layout.read_metrics(first)["start_step"],
                "alphas": path_points(points),  # the weight of copy a; 0: copy b's end
                "errors": errors,
                "examples": {split: examples[split] for split in splits},
                "instability": {split: instability(found) for split, found in errors.items()},
                "trained_from": began,
                "trained_until": time.time(),
            },
        )
    session.barrier()


def choose_rewind(measured: Sequence[Mapping], threshold: float) -> dict:
    """``rewinding.step: auto``: the earliest candidate whose dense network's instability is
    below ``threshold`` on the held-out split (val, else test, else train); when none is, the
    latest candidate, marked not stable. ``measured``: level 0's path measurements."""
    ordered = sorted(measured, key=lambda found: found["step"])
    split = next(name for name in CHOICE_SPLITS if name in ordered[0]["instability"])
    stable = [found for found in ordered if found["instability"][split] < threshold]
    chosen = stable[0] if stable else ordered[-1]
    return {
        "step": chosen["step"],
        "at": chosen["at"],
        "stable": bool(stable),
        "split": split,
        "threshold": threshold,
        "instability": {found["at"]: found["instability"][split] for found in ordered},
    }
