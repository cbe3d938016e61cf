"""Training throughput per GPU, end to end: an FFCV .beton of real JPEG photos read by the
project's training loader (RandomResizedCrop + flip, FFCV's ``ToDevice`` onto the GPU), then
ResNet-50 steps in bf16, channels-last, with SGD; at 160, 192 and 224 px, dense and 80%-sparse
masked (pruned weights re-zeroed after every step), with ``torch.compile`` off and on; images/s
and peak GPU memory for each.

    python bench/gpu_throughput.py                       # on a GPU machine (FFCV installed)
    python bench/gpu_throughput.py --device cpu --model resnet18 --resolutions 32 \\
        --batch 8 --images 64 --steps 2 --compile off    # the smoke run `make test` runs

Writes bench/results-gpu.json (or ``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from loader import write_photos

from scale_lth import models
from scale_lth.config import load
from scale_lth.data import LoaderOptions, train_batches
from scale_lth.pruning import MaskedParameters, magnitude_prune
from scale_lth.training.evaluation import autocast
from scale_lth.training.optim import build_optimizer

RESULTS = Path(__file__).with_name("results-gpu.json")


def batches_forever(batches):
    while True:
        yield from batches


def measure(model_name, batches, device, *, masked, compiled, steps) -> dict:
    torch.manual_seed(0)
    model = models.build(model_name, num_classes=1000).to(device)
    model.to(memory_format=torch.channels_last)
    training = load(
        None, ["training.optimizer=sgd", "training.momentum=0.9", "training.weight_decay=5e-5"]
    ).training
    optimizer = build_optimizer(model, training)
    weights = {n: p.detach() for n, p in model.named_parameters() if p.dim() > 1}
    keep = MaskedParameters(model, magnitude_prune(weights, 0.8)) if masked else None
    forward = torch.compile(model) if compiled else model
    amp = "bf16" if device.type == "cuda" else "none"
    stream = batches_forever(batches)

    def step() -> None:
        images, labels = next(stream)
        with autocast(device, amp):
            logits = forward(images)
        loss = F.cross_entropy(logits.float(), labels % 1000)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if keep is not None:
            keep.zero_weights()

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(max(3, steps // 5)):  # warm-up: compilation, cuDNN autotuning, loader start
        step()
    synchronize()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize()
    seconds = time.perf_counter() - started
    images = steps * batches.per_batch
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"images_per_second": images / seconds, "peak_memory_gib": memory}


class Sized:
    """Training batches that know their batch size (the last partial batch is dropped)."""

    def __init__(self, batches, per_batch: int) -> None:
        self.batches, self.per_batch = batches, per_batch

    def __iter__(self):
        return iter(self.batches)


def bench(arguments) -> dict:
    from scale_lth.cli import main as scale_lth

    device = torch.device(arguments.device)
    compiled = {"off": (False,), "on": (True,), "both": (False, True)}[arguments.compile]
    rows = []
    with tempfile.TemporaryDirectory(prefix="scale-lth-gpu-") as folder:
        root, written = Path(folder) / "photos", Path(folder) / "written"
        write_photos(root, arguments.images, photos=arguments.photos)
        command = ["data", "write", "--source", "imagefolder", "--root", str(root),
                   "--out", str(written), "--write-mode", "jpg"]  # fmt: skip
        if scale_lth(command) != 0:
            raise RuntimeError("writing the photos failed")
        for side in arguments.resolutions:
            options = LoaderOptions(
                device=device, threads=arguments.threads, resolution=side, channels_last=True
            )
            loaded = Sized(train_batches(written, arguments.batch, seed=0, options=options),
                           arguments.batch)  # fmt: skip
            for compile_ in compiled:
                for masked in (False, True):
                    result = measure(arguments.model, loaded, device, masked=masked,
                                     compiled=compile_, steps=arguments.steps)  # fmt: skip
                    rows.append({"resolution": side, "masked": masked, "compiled": compile_,
                                 **result})  # fmt: skip
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"device": name, "model": arguments.model, "batch": arguments.batch, "rows": rows}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[160, 192, 224])
    parser.add_argument("--batch", type=int, default=256, help="per GPU")
    parser.add_argument("--images", type=int, default=4096, help="photos written to the .beton")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per setting")
    parser.add_argument("--compile", choices=("off", "on", "both"), default="both")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--photos", type=Path, help="a folder of the sample JPEGs (no sklearn)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args(argv)
    results = bench(arguments)
    arguments.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{results['model']} batch {results['batch']} on {results['device']}")
    print(f"{'px':>5} {'masked':>7} {'compile':>8} {'images/s':>10} {'GiB':>6}")
    for row in results["rows"]:
        memory = "-" if row["peak_memory_gib"] is None else f"{row['peak_memory_gib']:.1f}"
        print(f"{row['resolution']:>5} {row['masked']!s:>7} {row['compiled']!s:>8} "
              f"{row['images_per_second']:>10.0f} {memory:>6}")  # fmt: skip


if __name__ == "__main__":
    main()
