"""Pruning and masked-training speed, each against a reference measured in the same run.

- Pruning one global level (20%) of ResNet-50's 25.5M conv/fc weights: scale-lth's selection
  against an OpenLTH-style full numpy sort and against torch.nn.utils.prune.global_unstructured.
- A masked training step (pruned weights zeroed after the optimizer step) against the same
  dense step, steps interleaved: on the CPU ResNet-18, 96 px, batch 32, fp32; on a GPU
  (``--device cuda``) ResNet-50, 224 px, batch 256, bf16 autocast, channels-last. Both use the
  training loop's fused SGD with momentum and weight decay.

Pruning runs on the CPU either way (the experiment's driver prunes saved weights). Writes
bench/results.json (or ``--out``) and prints a table. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils import prune

from scale_lth import models
from scale_lth.config import load
from scale_lth.pruning import Mask, MaskedParameters, magnitude_prune
from scale_lth.training.evaluation import autocast
from scale_lth.training.optim import build_optimizer

RESULTS = Path(__file__).with_name("results.json")


@dataclass(frozen=True)
class StepSetting:
    model: str
    image_size: int
    batch_size: int
    amp: str
    channels_last: bool


STEP_SETTINGS = {
    "cpu": StepSetting("resnet18", 96, 32, "none", channels_last=False),
    "cuda": StepSetting("resnet50", 224, 256, "bf16", channels_last=True),
}


def timed(work, repeats: int) -> float:
    """Median wall time of ``work()`` over ``repeats`` calls (after one warm-up call)."""
    work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def prunable_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    parameters = dict(model.named_parameters())
    return {name: parameters[name].detach() for name in models.prunable(model)}


def numpy_full_sort(weights: dict[str, torch.Tensor], fraction: float) -> dict[str, np.ndarray]:
    """OpenLTH's sparse_global.prune, step for step: copy to numpy, concatenate the surviving
    weights, sort all their magnitudes, threshold at the k-th, build float masks."""
    arrays = {name: w.clone().cpu().detach().numpy() for name, w in weights.items()}
    current = {name: np.ones(a.shape) for name, a in arrays.items()}
    remaining = np.sum([np.sum(m) for m in current.values()])
    count = np.ceil(fraction * remaining).astype(int)
    vector = np.concatenate([a[current[name] == 1] for name, a in arrays.items()])
    threshold = np.sort(np.abs(vector))[count]
    return {
        name: np.where(np.abs(a) > threshold, current[name], np.zeros_like(a))
        for name, a in arrays.items()
    }


def torch_global_unstructured(model: torch.nn.Module, fraction: float) -> None:
    modules = dict(model.named_modules())
    targets = [(modules[name.removesuffix(".weight")], "weight") for name in models.prunable(model)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=fraction)
    for module, name in targets:
        prune.remove(module, name)


def bench_pruning() -> dict[str, float]:
    torch.manual_seed(0)
    model = models.build("resnet50")
    weights = prunable_weights(model)
    dense = Mask.ones_like(weights)
    ours = timed(lambda: magnitude_prune(weights, 0.2, dense), repeats=7)
    numpy_sort = timed(lambda: numpy_full_sort(weights, 0.2), repeats=3)
    reference = models.build("resnet50")
    torch_prune = timed(lambda: torch_global_unstructured(reference, 0.2), repeats=3)
    return {
        "seconds": ours,
        "numpy_sort_seconds": numpy_sort,
        "torch_prune_seconds": torch_prune,
        "speedup_vs_numpy_sort": numpy_sort / ours,
        "speedup_vs_torch_prune": torch_prune / ours,
    }


def bench_masked_step(device: torch.device, rounds: int = 20, steps: int = 4) -> dict:
    setting = STEP_SETTINGS[device.type]
    torch.manual_seed(0)
    model = models.build(setting.model, num_classes=10).to(device)
    if setting.channels_last:
        model.to(memory_format=torch.channels_last)
    training = load(
        None, ["training.optimizer=sgd", "training.momentum=0.9", "training.weight_decay=1e-4"]
    ).training
    optimizer = build_optimizer(model, training)
    mask = magnitude_prune(prunable_weights(model), 0.8)
    masked = MaskedParameters(model, mask)
    side = setting.image_size
    images = torch.randn(setting.batch_size, 3, side, side, device=device)
    if setting.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (setting.batch_size,), device=device)

    def step(with_mask: bool) -> None:
        with autocast(device, setting.amp):
            logits = model(images)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if with_mask:
            masked.zero_weights()

    def finish() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):
        step(True)
    finish()
    dense_times, masked_times = [], []
    for round_ in range(rounds):  # interleaved, alternating which goes first
        order = ((False, dense_times), (True, masked_times))
        for with_mask, times in order if round_ % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            for _ in range(steps):
                step(with_mask)
            finish()
            times.append((time.perf_counter() - started) / steps)
    dense, masked_step = statistics.median(dense_times), statistics.median(masked_times)
    # each round's own ratio: a drift in machine speed hits both of its halves alike
    ratios = [m / d for d, m in zip(dense_times, masked_times, strict=True)]
    return {
        "setting": asdict(setting),
        "dense_seconds": dense,
        "masked_seconds": masked_step,
        "ratio_vs_dense": statistics.median(ratios),
        "masked_images_per_second": setting.batch_size / masked_step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=sorted(STEP_SETTINGS))
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    arguments = parser.parse_args()
    device = torch.device(arguments.device)
    threads = torch.get_num_threads()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    results = {
        "threads": threads,
        "device": name,
        "torch": torch.__version__,
        "prune_resnet50": bench_pruning(),
        "masked_step": bench_masked_step(device),
    }
    arguments.out.write_text(json.dumps(results, indent=2) + "\n")
    prune_, step = results["prune_resnet50"], results["masked_step"]
    numpy_, torch_ = prune_["speedup_vs_numpy_sort"], prune_["speedup_vs_torch_prune"]
    rows = [
        ("prune ResNet-50 one level (scale-lth)", prune_["seconds"], 1.0),
        ("  OpenLTH-style numpy full sort", prune_["numpy_sort_seconds"], numpy_),
        ("  torch.nn.utils.prune.global_unstructured", prune_["torch_prune_seconds"], torch_),
        (f"{describe(step['setting'])} step, dense", step["dense_seconds"], 1.0),
        ("  masked (pruned weights re-zeroed)", step["masked_seconds"], step["ratio_vs_dense"]),
    ]
    print(f"scale-lth benchmarks ({name}, torch {torch.__version__}, {threads} CPU threads)")
    print(f"written to {arguments.out}")
    print(f"{'measurement':<46}{'seconds':>10}{'ratio':>10}")
    for label, seconds, ratio in rows:
        print(f"{label:<46}{seconds:>10.3f}{ratio:>9.3f}x")


def describe(setting: dict) -> str:
    amp = "" if setting["amp"] == "none" else f" {setting['amp']}"
    return f"{setting['model']} {setting['image_size']}px batch {setting['batch_size']}{amp}"


if __name__ == "__main__":
    main()
