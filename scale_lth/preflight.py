"""Everything the driver checks before any work starts: the model the config names, the data
against the config, the experiment's folder (whose config wrote it, whether its files load,
whether checkpoints can resume), the disk, and the services it will use.

Each failure is a UserError: one line naming the problem and the fix, exit code 2, raised
before Ray starts or any file is written. docs/errors.md lists every message.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import shutil
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from scale_lth.config import Config, ConfigError
from scale_lth.config.hashing import non_default_values
from scale_lth.data import DataInfo
from scale_lth.data.info import info_path
from scale_lth.errors import UserError
from scale_lth.lottery.network import first_empty_level, pruned_groups, pruned_names
from scale_lth.lottery.steps import Steps, iterations_per_epoch, world_size
from scale_lth.orchestration.ray_auth import require_client_token
from scale_lth.orchestration.ray_train import worker_groups
from scale_lth.pruning import Mask
from scale_lth.results import InstabilityRun, Layout, RunKey
from scale_lth.storage import atomic_write, load_json, load_torch
from scale_lth.tracking.uri import auth_headers, is_refused_file_store, local_store
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
def identity(config: Config, info: DataInfo) -> dict:
    """What the experiment computes, and on which data."""
    return {"hash": config.hash, "computes": non_default_values(config), "data": info.identity()}


def check_identity(config: Config, info: DataInfo) -> None:
    """The folder, if it exists, was written by a config that computes the same thing, on the
    same data (an experiment of an earlier version records no data: it adopts this one)."""
    path = Layout(config.experiment_dir).identity_path
    if not path.is_file():
        return
    written = load_json(path)
    if written.get("computes") != non_default_values(config):
        raise UserError(
            f"{config.experiment_dir} was written by a different config (see its "
            f"{path.name}): set output_root or name to use another folder, or move that "
            "one away"
        )
    data = written.get("data")
    if data is not None and data != info.identity():
        raise UserError(
            f"{config.experiment_dir} was trained on other data than {config.data_dir} holds "
            f"now ({_data_difference(data, info.identity())}): point data.path at the data it "
            "was trained on, or set output_root or name to start another experiment"
        )


def _data_difference(before: dict, now: dict) -> str:
    """The first difference between two data identities, in words."""
    if before.get("source") != now["source"] or before.get("splits") != now["splits"]:
        then = f"{before.get('source')} {before.get('splits')}"
        return f"{then} then, {now['source']} {now['splits']} now"
    split = next(s for s in now["digests"] if before["digests"].get(s) != now["digests"][s])
    return f"{split}.beton was {before['digests'].get(split)}, is {now['digests'][split]}"


def write_identity(config: Config, info: DataInfo) -> None:
    """``identity.json``, once; an earlier version's, without the data, gets it now."""
    path = Layout(config.experiment_dir).identity_path
    written = load_json(path) if path.is_file() else {}
    if "data" not in written:
        atomic_write(path, json.dumps(identity(config, info), indent=1, sort_keys=True) + "\n")


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
            if not latest.is_dir():
                raise UserError(
                    f"{checkpoints.pointer} points at {latest.name}, which is not there: delete "
                    f"{checkpoints.pointer} to train that run from its start"
                )
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
        setting = "scaling.address" if config.scaling.address else "RAY_ADDRESS"
        try:
            host, port = _host_port(address, default_port=6379)
        except ValueError as error:  # a port that is no number, or out of range
            raise UserError(f"{setting}={address}: {error}; write it as HOST:PORT") from None
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


def check_gpu_share(config: Config) -> None:
    """``scaling.gpus_per_worker`` below 1 shares a GPU between workers: CPU workers have none
    to share, and NCCL refuses two ranks of one run on one GPU."""
    scaling = config.scaling
    share = scaling.gpus_per_worker
    if share == 1:
        return
    if not scaling.use_gpu:
        raise ConfigError(
            f"scaling.gpus_per_worker {share:g} shares GPUs, but the workers run on CPUs "
            "(scaling.use_gpu is false): set scaling.use_gpu=true on GPUs, or leave "
            "scaling.gpus_per_worker at 1"
        )
    if scaling.parallelism == "ddp" and scaling.num_workers > 1:
        raise ConfigError(
            f"scaling.gpus_per_worker {share:g} with {scaling.num_workers} DDP workers per run "
            "could put two ranks of a run on one GPU, which NCCL refuses: set "
            "scaling.parallelism=runs, or scaling.num_workers=1 (runs packed side by side)"
        )


def check_folders(config: Config) -> None:
    """``output_root``, and ``data_root`` where data will be written there, are folders this
    user can write (or can be made in one)."""
    places = [("output_root", Path(config.output_root))]
    if not config.data.path and not info_path(config.data_dir).is_file():  # digits: written
        places.append(("data_root", Path(config.data_root)))
    for setting, folder in places:
        if folder.exists() and not folder.is_dir():
            raise UserError(
                f"{setting} {folder} is a file, not a folder: set {setting} to a folder"
            )
        existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(
                f"{setting} {folder}: {existing} cannot be written by this user (read-only or "
                f"another user's): set {setting} to a folder you can write"
            )


def check_levels(config: Config, model: nn.Module) -> None:
    """Every level keeps some weight: a level that removes the last weights of a tensor pruned
    at its own rate, or of the tensors ranked together, leaves nothing to train."""
    empty = first_empty_level(config, model)
    if empty is not None:
        level, where = empty
        raise ConfigError(
            f"pruning.levels {config.pruning.levels} at pruning.fraction "
            f"{config.pruning.fraction}: level {level} would leave no weight in {where}; set "
            f"pruning.levels to at most {level - 1} or prune less per level"
        )


def check_channels(config: Config, model: nn.Module) -> None:
    """Channel pruning by BatchNorm scale needs a BatchNorm over every pruned channel group."""
    pruning = config.pruning
    if pruning.granularity != "channel" or pruning.channel_score != "bn_gamma":
        return
    bare = next((group for group in pruned_groups(config, model) if not group.norms), None)
    if bare is not None:
        raise ConfigError(
            f"pruning.channel_score bn_gamma: {config.model.name} has no BatchNorm over the "
            f"channels of {bare.producers[0].weight}; use pruning.channel_score l1"
        )


def check_tracking(config: Config, uri: str, fallback: bool = True) -> Config:
    """An MLflow server URI answers its health check; if not, the config's fallback store is
    used (returned in the config) where ``fallback`` allows one, or the run is refused. A
    folder of runs (MLflow's file store) is refused: MLflow 3 no longer opens one."""
    if config.tracking.enabled and is_refused_file_store(uri):
        raise UserError(
            f"tracking.uri (or MLFLOW_TRACKING_URI) {uri} is a folder of runs (MLflow's file "
            "store), which MLflow 3 no longer opens: use a SQLite file (e.g. "
            "sqlite:///mlflow.db) or an MLflow server (`mlflow migrate-filestore` moves the "
            "runs already there)"
        )
    if not config.tracking.enabled or not uri.startswith(("http://", "https://")):
        return config
    health = urllib.request.Request(f"{uri.rstrip('/')}/health", headers=auth_headers())
    try:
        with urllib.request.urlopen(health, timeout=CONNECT_SECONDS):
            return config
    except (OSError, ValueError, http.client.HTTPException) as error:  # ValueError: a bad URL
        reason = _reason(getattr(error, "reason", error))
    store = config.tracking.fallback_uri if fallback else ""
    if not store:
        raise UserError(
            f"MLflow at {uri} does not answer ({reason}): start the server, fix tracking.uri "
            "(or MLFLOW_TRACKING_URI), set tracking.fallback_uri to a local store, or set "
            "tracking.enabled=false"
        )
    fallen_back = dataclasses.replace(config.tracking, uri=store)
    problem = store_problem(store)
    if problem:
        raise UserError(
            f"MLflow at {uri} does not answer ({reason}), and tracking.fallback_uri {store} "
            f"{problem}: start the server, or fix tracking.uri or tracking.fallback_uri"
        )
    print(f"MLflow at {uri} does not answer ({reason}); logging to {store} instead", flush=True)
    return dataclasses.replace(config, tracking=fallen_back)


def store_problem(uri: str) -> str | None:
    """Why a tracking store cannot be used, in words; None if it can: a server that answers
    its health check, or a SQLite file in a folder this user can write."""
    if uri.startswith(("http://", "https://")):
        health = urllib.request.Request(f"{uri.rstrip('/')}/health", headers=auth_headers())
        try:
            with urllib.request.urlopen(health, timeout=CONNECT_SECONDS):
                return None
        except (OSError, ValueError, http.client.HTTPException) as error:
            return f"does not answer either ({_reason(getattr(error, 'reason', error))})"
    store = local_store(uri)
    if store is None:
        return None  # another kind of store: MLflow's client says what it makes of it
    folder = next(parent for parent in store.parents if parent.exists())
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot be written under {folder}"
    return None


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(address if "://" in address else f"//{address}")
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def _reason(error: object) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__
