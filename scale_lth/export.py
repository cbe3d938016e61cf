"""A finished run's network taken away from its experiment (``scale-lth export RUN_FOLDER``),
and loaded back with ``load``.

What a run folder exports depends on its mask: a ticket of ``pruning.granularity: channel``
becomes a physically smaller dense network (the channels its mask removes taken out,
scale_lth.pruning.compact), whose outputs equal the masked network's; any other run (a weight
ticket, a baseline, the dense level) is its network as trained, pruned weights exactly zero.

The formats (``--format``), each written to the run's ``export/`` folder beside
``export.json`` (the model, its input and how to normalise it, its classes, the run, the
counts):
- ``state_dict``, ``model.pt``: for ``load`` (this module: torch and scale_lth.models only, no
  Ray, FFCV or MLflow). A channel ticket's file holds the compacted weights with the channel
  groups and the channels each keeps; any other run's holds each masked weight as a PyTorch
  CSR matrix of its rows (a convolution's output channels) beside its bit-packed mask, and
  every other tensor dense.
- ``torchscript``, ``model.torchscript.pt``: the network traced, for ``torch.jit.load`` alone.
- ``onnx``, ``model.onnx``: the network for onnxruntime, any batch size.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from scale_lth import models
from scale_lth.config import Config, load_saved
from scale_lth.errors import UserError
from scale_lth.pruning import Mask
from scale_lth.pruning.channel_groups import ChannelGroup, Consumer, Producer
from scale_lth.pruning.channels import kept_channels
from scale_lth.pruning.compact import compact
from scale_lth.results import Layout, RunKey
from scale_lth.storage import atomic_torch_save, atomic_write, atomic_write_json, load_torch

if TYPE_CHECKING:
    from scale_lth.data import DataInfo

FILES = {"state_dict": "model.pt", "torchscript": "model.torchscript.pt", "onnx": "model.onnx"}
FORMAT = "scale-lth export"
VERSION = 1
ONNX_EXPORTER = ("onnx", "onnxscript")  # what torch's ONNX exporter imports
RUN_FOLDER = re.compile(r"replicate_(\d+)/level_(\d+)/([^/]+)")


@dataclass(frozen=True)
class Ticket:
    """A finished run's network ready to export, and what it was made from."""

    layout: Layout
    key: RunKey
    config: Config
    info: DataInfo
    arguments: dict[str, Any]  # models.build's, besides the name
    network: nn.Module  # in eval mode: compacted (channel tickets) or as trained
    mask: Mask | None  # None for the dense level
    groups: list[ChannelGroup] | None  # a channel ticket's, else None
    kept: list[torch.Tensor] | None  # the channels each group keeps

    @property
    def example(self) -> torch.Tensor:
        """Two inputs of the network's shape (zeros)."""
        size = self.config.data.eval_resolution or self.config.data.resolution
        size = size or (self.info.shape[1] if self.info.shape else 224)
        return torch.zeros(2, self.info.channels, size, size)


def run_of(folder: Path) -> tuple[Layout, RunKey]:
    """The experiment and the finished run of a run folder, else one line saying why not."""
    resolved = Path(folder).resolve()
    matched = RUN_FOLDER.fullmatch("/".join(resolved.parts[-3:]))
    if not resolved.is_dir() or matched is None:
        raise UserError(
            f"{folder}: not a run folder; name one like "
            "<experiment>/replicate_0/level_3/main (see `scale-lth status`)"
        )
    key = RunKey(int(matched[1]), int(matched[2]), matched[3])
    layout = Layout(resolved.parents[2])
    if not layout.config_path.is_file():
        raise UserError(f"{layout.root} holds no experiment (no config.yaml): name a run in one")
    if key.in_instability or not layout.is_done(key):
        raise UserError(
            f"{folder}: no finished run of a method there (no metrics.json); finish it "
            "first (`scale-lth lottery` on its config), then export it"
        )
    return layout, key


def saved_experiment(layout: Layout) -> tuple[Config, DataInfo]:
    """The experiment's saved config and the description of its data."""
    from scale_lth.data import planned_info

    config = load_saved(layout.config_path)
    return config, planned_info(config.data_dir, config.data.dataset)


def ticket(
    layout: Layout, key: RunKey, experiment: tuple[Config, DataInfo] | None = None
) -> Ticket:
    """The run's network: its final weights, compacted where its mask removes channels
    (``experiment``: ``saved_experiment(layout)``, read once by a caller taking many runs)."""
    from scale_lth.lottery.network import build_network, network_arguments, pruned_groups

    config, info = experiment or saved_experiment(layout)
    network = build_network(config, info, seed=0)
    network.load_state_dict(load_torch(layout.final_path(key)))
    mask = Mask.load(layout.mask_path(key)) if layout.mask_path(key).is_file() else None
    groups = kept = None
    if mask is not None and config.pruning.granularity == "channel":
        groups = pruned_groups(config, network)
        kept = kept_channels(mask, groups)
        network = compact(network, groups, kept)
    arguments = network_arguments(config, info)
    return Ticket(layout, key, config, info, arguments, network.eval(), mask, groups, kept)


def export(found: Ticket, form: str, folder: Path) -> Path:
    """Write ``found``'s network in ``form`` (a key of FILES) and ``export.json`` into
    ``folder``; return the network's file."""
    path = folder / FILES[form]
    folder.mkdir(parents=True, exist_ok=True)
    if form == "state_dict":
        atomic_torch_save(saved_state(found), path)
    elif form == "torchscript":
        _write_torchscript(found, path)
    else:
        _write_onnx(found, path)
    atomic_write_json(folder / "export.json", description(found, form))
    return path


def traced(found: Ticket) -> torch.jit.ScriptModule:
    """The network traced on its example input (outputs checked against it by the trace)."""
    with torch.no_grad():
        return torch.jit.trace(found.network, found.example)


def _write_torchscript(found: Ticket, path: Path) -> None:
    buffer = io.BytesIO()
    torch.jit.save(traced(found), buffer)
    atomic_write(path, buffer.getvalue())


def require_exporter(form: str) -> None:
    """Refuse ``form`` in one line where this Python lacks what writes it (before any work)."""
    missing = [name for name in ONNX_EXPORTER if importlib.util.find_spec(name) is None]
    if form == "onnx" and missing:
        raise UserError(
            f"--format onnx needs {' and '.join(missing)}: pip install {' '.join(missing)}"
        )


def _write_onnx(found: Ticket, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        found.network,
        (found.example,),
        dynamo=True,
        dynamic_shapes=({0: batch},),
        input_names=["images"],
        output_names=["logits"],
        verbose=False,
    )
    if program is None:  # only the exporter given a file returns nothing
        raise RuntimeError("torch.onnx.export returned no program")
    atomic_write(path, program.model_proto.SerializeToString())


def saved_state(found: Ticket) -> dict[str, Any]:
    """What ``model.pt`` holds: enough for ``load`` to rebuild the network exactly."""
    state = found.network.state_dict()
    record: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model": found.config.model.name,
        "arguments": found.arguments,
    }
    if found.groups is not None:
        record["groups"] = [dataclasses.asdict(group) for group in found.groups]
        record["kept"] = found.kept
        record["dense"] = state
        return record
    masked = set(found.mask or {})
    record["dense"] = {name: t for name, t in state.items() if name not in masked}
    record["sparse"] = {name: _rows(state[name]).to_sparse_csr() for name in masked}
    record["shapes"] = {name: list(state[name].shape) for name in masked}
    record["mask"] = found.mask.packed() if found.mask is not None else {}
    return record


def _rows(weight: torch.Tensor) -> torch.Tensor:
    """A weight as a matrix of its output rows."""
    return weight.reshape(weight.shape[0], -1)


def load(path: str | Path) -> nn.Module:
    """The network of a ``model.pt`` that ``scale-lth export --format state_dict`` wrote, in
    eval mode, with exactly the exported weights."""
    record = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(record, Mapping) or record.get("format") != FORMAT:
        raise ValueError(f"{path} is no file of `scale-lth export --format state_dict`")
    if record["version"] != VERSION:
        raise ValueError(f"{path} is of export version {record['version']}; this reads {VERSION}")
    network = models.build(record["model"], **record["arguments"])
    state = dict(record["dense"])
    if "groups" in record:
        groups = [_group(group) for group in record["groups"]]
        network = compact(network, groups, record["kept"])
    else:
        mask = Mask.unpacked(record["mask"])
        for name, rows in record["sparse"].items():
            weight = rows.to_dense().reshape(record["shapes"][name])
            if (weight != 0).logical_and(~mask[name]).any():
                raise ValueError(f"{path}: {name} has weights its mask removes")
            state[name] = weight
    network.load_state_dict(state)
    return network.eval()


def _group(saved: Mapping[str, Any]) -> ChannelGroup:
    return ChannelGroup(
        channels=saved["channels"],
        producers=tuple(Producer(**producer) for producer in saved["producers"]),
        norms=tuple(saved["norms"]),
        consumers=tuple(Consumer(**consumer) for consumer in saved["consumers"]),
    )


def description(found: Ticket, form: str) -> dict[str, Any]:
    """``export.json``: what the file holds and how to feed it."""
    info, config = found.info, found.config
    parameters = sum(p.numel() for p in found.network.parameters())
    kept = found.mask.num_kept if found.mask is not None else None
    return {
        "file": FILES[form],
        "format": form,
        "run": str(found.key),
        "experiment": f"{config.name}-{config.hash}",
        "model": config.model.name,
        "granularity": config.pruning.granularity if found.mask is not None else "dense",
        "input": {
            "shape": list(found.example.shape[1:]),
            "layout": "N x C x H x W, float32",
            "normalise": "(pixels - mean) / std, pixels on the 0-255 scale",
            "mean": info.mean,
            "std": info.std,
        },
        "classes": found.arguments["num_classes"],
        "parameters": parameters,
        "weights_kept": kept,
        "final_accuracy": found.layout.read_metrics(found.key)["final_accuracy"],
    }
