"""What each finished run's network costs to run, written to ``report/cost.json`` before the
report reads it (scale_lth.report.cost): its multiply-accumulates per example, its parameters
and its measured latency.

- The network as it would run: a ticket, or a baseline, of ``pruning.granularity: channel``
  compacted (scale_lth.export.ticket: the channels its mask removes taken out) and counted in
  full; any other run (weight granularity, the dense level) dense-shaped, its
  multiply-accumulates and parameters counting only the weights its mask keeps
  (scale_lth.models.flops). That is the theoretical sparse count: a dense kernel does the work
  of every zero, so the latency of such a run is that of the dense-shaped network.
- Latency: the network in eval mode, without gradients, on the CPU with torch's threads as they
  are, on a batch of random inputs of each of ``BATCHES``: after ``WARMUP`` untimed passes, the
  median of ``REPETITIONS`` timed ones, in milliseconds. It depends only on the shapes of the
  network's tensors, so it is measured once per shape (every run of weight granularity shares
  the dense network's measurement), and again for every shape when the conditions (device,
  processor, threads, batches, counts) differ from those the file records: one file never
  mixes measurements of two machines.
- Cached: a run whose ``final.pt`` and ``mask.pt`` have the sizes and modification times the
  file records is not loaded again, so a report of a finished experiment is cheap.

The file: ``{"latency": <the conditions>, "runs": {<run id>: {"replicate", "level", "branch",
"files", "shape", "macs", "parameters", "latency_ms": {<batch>: ms}}}}``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import statistics
from pathlib import Path
from time import perf_counter
from typing import Any

import torch
from torch import nn

from scale_lth.console import say
from scale_lth.errors import UserError
from scale_lth.export import Ticket, saved_experiment, ticket
from scale_lth.models.flops import multiply_accumulates, weight_uses
from scale_lth.results import Layout, RunKey
from scale_lth.storage import DamagedFile, atomic_write_json, load_json

BATCHES = (64, 1)  # the first is the one the report plots
WARMUP = 2
REPETITIONS = 7


def write_costs(layout: Layout) -> None:
    """Measure what the finished runs not yet in ``cost.json`` cost, and write the file (none
    before a run is finished). Where a run cannot be loaded (the experiment's data or config
    is missing), say why in one line and leave the file as it was."""
    path = layout.cost_path
    recorded = _recorded(path)
    conditions = latency_conditions()
    try:
        runs = measured(layout, recorded, conditions)
    except UserError as error:
        say(f"Cost not measured (the report goes on without it): {error}")
        return
    record = {"latency": conditions, "runs": runs}
    if runs and record != recorded:
        atomic_write_json(path, record)


def _recorded(path: Path) -> dict[str, Any]:
    """What ``cost.json`` holds; nothing where it is missing or damaged (a cache: what it held
    is measured again)."""
    try:
        return load_json(path)
    except (FileNotFoundError, DamagedFile):
        return {}


def measured(
    layout: Layout, recorded: dict[str, Any], conditions: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Every finished run of a method that kept its weights, by run id: ``recorded``'s entry
    where its files are unchanged and its shape's latency was measured under ``conditions``,
    else measured now."""
    earlier = recorded.get("runs", {})
    latencies: dict[str, dict[str, float]] = {}
    if recorded.get("latency") == conditions:
        latencies = {entry["shape"]: entry["latency_ms"] for entry in earlier.values()}
    runs: dict[str, dict[str, Any]] = {}
    experiment = None  # read at the first run to measure
    for key in layout.finished():
        if not layout.final_path(key).is_file():
            continue  # its weights deleted (to save room): nothing to measure
        files = file_stamps(layout, key)
        entry = earlier.get(key.run_id)
        if entry is None or entry["files"] != files or entry["shape"] not in latencies:
            experiment = experiment or saved_experiment(layout)
            found = ticket(layout, key, experiment)
            entry = {"files": files, **counts(found)}
            if entry["shape"] not in latencies:
                latencies[entry["shape"]] = latencies_ms(found)
        runs[key.run_id] = {**entry, "latency_ms": latencies[entry["shape"]]}
    return runs


def file_stamps(layout: Layout, key: RunKey) -> dict[str, str | None]:
    """The size and modification time of the run's weights and mask (None: no mask)."""
    stamps: dict[str, str | None] = {}
    for path in (layout.final_path(key), layout.mask_path(key)):
        stat = path.stat() if path.is_file() else None
        stamps[path.name] = f"size {stat.st_size}, modified {stat.st_mtime_ns}" if stat else None
    return stamps


def counts(found: Ticket) -> dict[str, Any]:
    """The run's key, its network's shape, and the multiply-accumulates per example and the
    parameters of its network as it would run."""
    network = found.network
    kept = found.mask.layer_kept() if found.mask is not None and found.groups is None else {}
    uses = weight_uses(network, found.example[:1])
    return {
        "replicate": found.key.replicate,
        "level": found.key.level,
        "branch": found.key.branch,
        "shape": shape_digest(network),
        "macs": multiply_accumulates(network, uses, kept),
        "parameters": sum(kept.get(name, p.numel()) for name, p in network.named_parameters()),
    }


def shape_digest(network: nn.Module) -> str:
    """Twelve hex digits naming the shapes of the network's tensors, in order."""
    shapes = [[name, list(tensor.shape)] for name, tensor in network.state_dict().items()]
    return hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:12]


def latencies_ms(found: Ticket) -> dict[str, float]:
    """The network's latency on a batch of each of ``BATCHES``, by batch size."""
    generator = torch.Generator().manual_seed(0)
    shape = found.example.shape[1:]
    return {
        str(batch): latency_ms(found.network, torch.randn(batch, *shape, generator=generator))
        for batch in BATCHES
    }


def latency_ms(network: nn.Module, inputs: torch.Tensor) -> float:
    """The median time, in milliseconds, of ``REPETITIONS`` passes of ``inputs`` through
    ``network`` (in eval mode), after ``WARMUP`` untimed ones, without gradients."""
    times = []
    with torch.no_grad():
        for _ in range(WARMUP):
            network(inputs)
        for _ in range(REPETITIONS):
            started = perf_counter()
            network(inputs)
            times.append(perf_counter() - started)
    return 1000 * statistics.median(times)


def latency_conditions() -> dict[str, Any]:
    """What a latency measured now depends on besides the network, as ``cost.json`` records
    it."""
    return {
        "device": "cpu",
        "processor": processor(),
        "threads": torch.get_num_threads(),
        "batches": list(BATCHES),
        "warmup": WARMUP,
        "repetitions": REPETITIONS,
        "statistic": "median",
    }


def processor() -> str:
    """The CPU's model name (Linux's ``/proc/cpuinfo``), else what ``platform`` says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
