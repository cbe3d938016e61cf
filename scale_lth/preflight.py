"""Everything the driver checks before any work starts: the model the config names, the data
against the config, the experiment's folder (whose config wrote it, whether its files load,
whether checkpoints can resume), the disk, and the services it will use.

Each failure is a UserError: one line naming the problem and the fix, exit code 2, raised
before Ray starts or any file is written. docs/errors.md lists every message.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from scale_lth.config import Config, ConfigError
from scale_lth.config.hashing import non_default_values
from scale_lth.data import DataInfo
from scale_lth.errors import UserError
from scale_lth.lottery.network import pruned_names
from scale_lth.lottery.steps import Steps, iterations_per_epoch, world_size
from scale_lth.orchestration.ray_auth import require_client_token
from scale_lth.orchestration.ray_train import worker_groups
from scale_lth.pruning import Mask
from scale_lth.results import InstabilityRun, Layout, RunKey
from scale_lth.storage import atomic_write, load_json, load_torch
from scale_lth.training.state import Checkpoints

CONNECT_SECONDS = 5.0


# ----- the data ----------------------------------------------------------------------------
def check_data(config: Config, info: DataInfo) -> None:
    """Batches, durations and classes that fit the data."""
    workers = world_size(config)
    batch = config.data.batch_size
    if batch % workers:
        raise ConfigError(
            f"data.batch_size {batch} must divide evenly over scaling.num_workers {workers}: "
            f"make it a multiple of {workers}"
        )
    per_epoch = iterations_per_epoch(config, info.splits["train"])
    if per_epoch < 1:
        raise ConfigError(
            f"data.batch_size {batch} exceeds the {info.splits['train']} training examples: "
            "lower it"
        )
    total = config.training.duration.iterations(per_epoch)
    if total < 1:
        raise ConfigError("training.duration must be at least one iteration: lengthen it")
    rewinding = config.rewinding
    if rewinding.step == "auto" and not rewinding.candidates:
        raise ConfigError(
            "rewinding.step: auto chooses among rewinding.candidates, and there are none: list "
            "them (e.g. rewinding.candidates=[0it,100it,500it]) or give rewinding.step a duration"
        )
    starts = [("rewinding.step", rewinding.step)] if rewinding.step != "auto" else []
    starts += [("rewinding.candidates", step) for step in rewinding.candidates]
    starts += [("instability.steps", step) for step in config.instability.steps]
    for key, step in starts:
        if step.iterations(per_epoch) >= total:
            raise ConfigError(
                f"{key} {step} ({step.iterations(per_epoch)} it) must come before the end of "
                f"training.duration {config.training.duration} ({total} it): lower {key} or "
                "lengthen training.duration"
            )
    classes = config.model.num_classes
    if classes is not None and classes < info.num_classes:
        raise ConfigError(
            f"model.num_classes {classes} leaves out labels: {config.data_dir} has "
            f"{info.num_classes} classes (labels 0-{info.num_classes - 1}); set "
            f"model.num_classes={info.num_classes} or leave it empty"
        )


# ----- the experiment's folder ---------------------------------------------------------------
def identity(config: Config) -> dict:
    return {"hash": config.hash, "computes": non_default_values(config)}


def check_identity(config: Config) -> None:
    """The folder, if it exists, was written by a config that computes the same thing."""
    path = Layout(config.experiment_dir).identity_path
    if not path.is_file():
        return
    written = load_json(path)
    if written.get("computes") != identity(config)["computes"]:
        raise UserError(
            f"{config.experiment_dir} was written by a different config (see its "
            f"{path.name}): set output_root or name to use another folder, or move that "
            "one away"
        )


def write_identity(config: Config) -> None:
    path = Layout(config.experiment_dir).identity_path
    if not path.exists():
        atomic_write(path, json.dumps(identity(config), indent=1, sort_keys=True) + "\n")


def check_results(
    layout: Layout, keys: Sequence[RunKey], probe: nn.Module, config: Config, steps: Steps
) -> None:
    """Every file the job will read loads, every mask fits the model, and every checkpoint
    it will resume was written with this world size."""
    pruned = dict(probe.named_parameters())
    names = set(pruned_names(config, probe))
    ranks = world_size(config)
    replicates = set()
    for key in keys:
        replicates.add(key.replicate)
        folder = layout.run_dir(key)
        if layout.is_done(key):
            layout.read_metrics(key)
            if key.is_ticket:
                load_torch(layout.final_path(key), mmap=True)
        mask_path = layout.mask_path(key)
        if mask_path.is_file():
            mask = Mask.load(mask_path)
            try:
                mask.validate(pruned)
                if set(mask) != names:
                    raise ValueError(f"it masks {len(mask)} tensors, the model prunes {len(names)}")
            except ValueError as error:
                raise UserError(
                    f"{mask_path} does not fit model {config.model.name} ({error}): move the "
                    "folder away or fix model.name/pruning.ignore"
                ) from None
        checkpoints = Checkpoints(folder)
        latest = checkpoints.latest()
        if latest is not None and not layout.is_done(key):
            load_torch(latest / "state.pt", mmap=True)
            saved = checkpoints.world_size()
            if saved != ranks:
                raise UserError(
                    f"{folder} was checkpointed by {saved} workers and scaling.num_workers gives "
                    f"{ranks}: resume with scaling.num_workers={saved}, or delete its resume* "
                    "files to train that run again from its start"
                )
    for replicate in sorted(replicates):
        for path in (layout.init_path(replicate), layout.rewind_path(replicate)):
            if path.is_file():
                load_torch(path, mmap=True)
    check_saved_points(layout, keys, steps)


def check_saved_points(layout: Layout, keys: Iterable[RunKey], steps: Steps) -> None:
    """The dense run saves the weights instability copies start from while it trains: a copy
    to train from a step it finished without saving cannot start."""
    for key in keys:
        kind = key.kind
        if not isinstance(kind, InstabilityRun) or key.level > 0 or layout.is_done(key):
            continue
        path = layout.point_path(key.replicate, steps.at(kind.at))
        if layout.is_done(RunKey(key.replicate, 0)) and not path.is_file():
            raise UserError(
                f"the dense run of replicate {key.replicate} finished without saving its "
                f"weights at {kind.at} (it saves them only while it trains): measure from "
                "steps it saved (its step_*.pt files), or move "
                f"{layout.run_dir(RunKey(key.replicate, 0))} away to train it again"
            )


def check_disk(config: Config, probe: nn.Module, runs_per_level: int) -> None:
    """Room for one level: its runs' final weights and masks, the dense level's init and
    rewind weights, and a run's two resumable checkpoints (weights and optimizer state)."""
    weights = sum(t.numel() * t.element_size() for t in probe.state_dict().values())
    slots = 2 if config.training.optimizer == "adam" else int(config.training.momentum > 0)
    needed = weights * (runs_per_level + 2 + 2 * (1 + slots))
    folder = config.experiment_dir
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise UserError(
            f"not enough free disk for one level under {folder}: about {_size(needed)} needed "
            f"(model weights {_size(weights)}), {_size(free)} free; free some space or set "
            "output_root to a larger disk"
        )


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


# ----- services -----------------------------------------------------------------------------
def check_ray(config: Config) -> None:
    """A Ray address that answers, and its auth token; for a local Ray, enough CPUs and GPUs
    for the workers (a cluster's own are checked once connected, before training starts)."""
    address = config.scaling.address or os.environ.get("RAY_ADDRESS", "")
    if address and address != "auto":
        host, port = _host_port(address, default_port=6379)
        setting = "scaling.address" if config.scaling.address else "RAY_ADDRESS"
        try:
            socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
        except OSError as error:
            raise UserError(
                f"{setting}={address}: no Ray cluster answers there ({_reason(error)}); start "
                f"it (`ray start --head`) or fix {setting}"
            ) from None
        require_client_token(address)
        return
    if not address:
        worker_groups(config, len(os.sched_getaffinity(0)), torch.cuda.device_count(), "here")


def check_tracking(config: Config, uri: str, fallback: bool = True) -> Config:
    """An MLflow server URI answers its health check; if not, the config's fallback store is
    used (returned in the config) where ``fallback`` allows one, or the run is refused."""
    if not config.tracking.enabled or not uri.startswith(("http://", "https://")):
        return config
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=CONNECT_SECONDS):
            return config
    except (OSError, urllib.error.URLError) as error:
        reason = _reason(getattr(error, "reason", error))
    store = config.tracking.fallback_uri if fallback else ""
    if not store:
        raise UserError(
            f"MLflow at {uri} does not answer ({reason}): start the server, fix tracking.uri "
            "(or MLFLOW_TRACKING_URI), set tracking.fallback_uri to a local store, or set "
            "tracking.enabled=false"
        )
    print(f"MLflow at {uri} does not answer ({reason}); logging to {store} instead", flush=True)
    return dataclasses.replace(config, tracking=dataclasses.replace(config.tracking, uri=store))


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(address if "://" in address else f"//{address}")
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def _reason(error: object) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__
