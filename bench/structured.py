"""Channel tickets, timed: the dense network, the masked one (the ticket's zeros in place: what a
mask costs, structured or not) and the compacted one (scale_lth.pruning.compact: the removed
channels taken out), in one run, rounds interleaved.

ResNet-18 and ResNet-50 (torchvision's, 1,000 classes) at 160 px, channel tickets keeping 50%
and 25% of every channel group's channels (the lowest mean |weight| removed, as a level of
`pruning.granularity: channel` with `pruning.scope: layer` does), timed for inference at batch
1 and 64 (eval mode, no gradients) and a training step at batch 64 (SGD with momentum; the
masked network's weights zeroed after it, as masked training does); fp32 on the CPU, with
``--device cuda`` bf16 autocast and channels-last. Each network's MACs per image (counted from
its weights' uses, scale_lth.models.flops), parameter count, and peak memory of the training
step (CUDA: the allocator's peak; CPU: the peak resident memory of a fresh process doing that
step alone, less that of the same process before the step).

Writes ``structured`` into bench/results.json (or ``--out``): ``speedup_per_mac_reduction``, the
compacted ResNet-50 at 50% channels, batch-64 inference, its speed-up over the dense network
divided by its MAC reduction (Torch-Pruning's DepGraph reports 2.19x for 3.85x fewer MACs,
0.57, on a GPU); ``compact_vs_masked``, how many times faster the compacted network is than the
masked one there. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from scale_lth import models
from scale_lth.models.flops import multiply_accumulates, weight_uses
from scale_lth.pruning import Mask, MaskedParameters
from scale_lth.pruning.channel_groups import channel_groups
from scale_lth.pruning.channels import channel_mask, channel_scores, remove_channels
from scale_lth.pruning.compact import compact
from scale_lth.training.evaluation import autocast

RESULTS = Path(__file__).with_name("results.json")
MODELS = ("resnet18", "resnet50")
KEEPS = (0.5, 0.25)  # of every group's channels
SIDE = 160
BATCHES = (1, 64)
VARIANTS = ("dense", "masked", "compact")


def networks(name: str, keep: float) -> tuple[dict[str, torch.nn.Module], Mask]:
    """The dense network, the masked one and the compacted one of a channel ticket keeping
    ``keep`` of every group's channels (by L1 score), and the ticket's mask."""
    torch.manual_seed(0)
    dense = models.build(name).eval()
    groups = channel_groups(dense)
    scores = channel_scores(dense.state_dict(), groups, "l1")
    alive = [torch.ones(group.channels, dtype=torch.bool) for group in groups]
    kept = remove_channels(scores, alive, 1 - keep, [1 - keep] * len(groups))
    shapes = {n: p.shape for n, p in dense.named_parameters()}
    mask = channel_mask(shapes, groups, kept)
    masked = copy.deepcopy(dense)
    MaskedParameters(masked, mask).zero_weights()
    return {"dense": dense, "masked": masked, "compact": compact(masked, groups, kept)}, mask


def prepared(model: torch.nn.Module, device: torch.device, channels_last: bool):
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def images(batch: int, device: torch.device, channels_last: bool) -> torch.Tensor:
    batch_images = torch.randn(batch, 3, SIDE, SIDE, device=device)
    return (
        batch_images.contiguous(memory_format=torch.channels_last)
        if channels_last
        else batch_images
    )


def train_step(model, mask: Mask | None, device: torch.device, amp: str) -> Callable[[], None]:
    """One SGD step at batch 64 on ``model`` (the mask's zeros restored after it, if given)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    masked = MaskedParameters(model, mask) if mask is not None else None
    inputs = images(64, device, channels_last=amp != "none")
    labels = torch.randint(0, 1000, (64,), device=device)

    def step() -> None:
        model.train()
        with autocast(device, amp):
            logits = model(inputs)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if masked is not None:
            masked.zero_weights()

    return step


def inference(model, batch: int, device: torch.device, amp: str) -> Callable[[], None]:
    inputs = images(batch, device, channels_last=amp != "none")

    def run() -> None:
        model.eval()
        with torch.no_grad(), autocast(device, amp):
            model(inputs)

    return run


def interleaved(work: dict[str, Callable[[], None]], device, rounds: int) -> dict[str, list]:
    """Seconds of each piece of work per round, after one warm-up each; the order alternates
    from round to round, so a drift in the machine's speed hits every piece alike."""

    def finish() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for run in work.values():
        run()
    finish()
    times: dict[str, list] = {name: [] for name in work}
    names = list(work)
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            work[name]()
            finish()
            times[name].append(time.perf_counter() - started)
    return times


def paired(slower: list[float], faster: list[float]) -> float:
    """The median of each round's own ratio."""
    return statistics.median(s / f for s, f in zip(slower, faster, strict=True))


def peak_memory_mb(name: str, keep: float, variant: str, device: torch.device, amp: str) -> float:
    """Peak memory of one training step of ``variant``: on CUDA the allocator's peak over the
    step, on the CPU a fresh process's peak resident memory growth over it."""
    if device.type == "cuda":
        built, mask = networks(name, keep)
        model = prepared(built[variant], device, amp != "none")
        step = train_step(model, mask if variant == "masked" else None, device, amp)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    ran = subprocess.run(
        [sys.executable, __file__, "--peak-of", name, str(keep), variant],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(ran.stdout.split()[-1])


def peak_here(name: str, keep: float, variant: str) -> None:
    """(In a fresh process.) Print this process's peak resident memory growth over one CPU
    training step of ``variant``, in MB: Linux's peak resident set (VmHWM), reset to the
    resident set before the step. Not ``getrusage``'s maximum, which a process started by
    another inherits from it across ``exec``."""
    built, mask = networks(name, keep)
    model = built[variant]
    step = train_step(model, mask if variant == "masked" else None, torch.device("cpu"), "none")
    Path("/proc/self/clear_refs").write_text("5")  # the peak, from now on
    before = resident_mb("VmRSS")
    step()
    print(resident_mb("VmHWM") - before)


def resident_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS: resident now; VmHWM: its peak), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def bench(device: torch.device, rounds: int) -> dict:
    amp = "bf16" if device.type == "cuda" else "none"
    results: dict = {"device": str(device), "amp": amp, "side": SIDE, "rounds": rounds}
    for name in MODELS:
        for keep in KEEPS:
            built, mask = networks(name, keep)
            example = torch.zeros(1, 3, SIDE, SIDE)
            macs = {v: multiply_accumulates(m, weight_uses(m, example)) for v, m in built.items()}
            macs["masked"] = macs["dense"]  # its zeros are multiplied all the same
            models_here = {v: prepared(m, device, amp != "none") for v, m in built.items()}
            work = {}
            for variant, model in models_here.items():
                for batch in BATCHES:
                    work[f"{variant} infer {batch}"] = inference(model, batch, device, amp)
                ticket_mask = mask if variant == "masked" else None
                work[f"{variant} train 64"] = train_step(model, ticket_mask, device, amp)
            times = interleaved(work, device, rounds)
            measured = {
                "macs_per_image": macs,
                "parameters": {v: sum(p.numel() for p in m.parameters()) for v, m in built.items()},
                "ms": {k: 1000 * statistics.median(t) for k, t in times.items()},
                "peak_train_mb": {v: peak_memory_mb(name, keep, v, device, amp) for v in VARIANTS},
            }
            for what in ("infer 1", "infer 64", "train 64"):
                compacted = times[f"compact {what}"]
                speedup = paired(times[f"dense {what}"], compacted)
                measured[f"speedup {what}"] = speedup
                measured[f"compact_vs_masked {what}"] = paired(times[f"masked {what}"], compacted)
                measured[f"speedup_per_mac_reduction {what}"] = speedup / (
                    macs["dense"] / macs["compact"]
                )
            results[f"{name} keep {keep:g}"] = measured
            print(json.dumps({f"{name} keep {keep:g}": measured}, indent=1), flush=True)
    headline = results["resnet50 keep 0.5"]
    results["speedup_per_mac_reduction"] = headline["speedup_per_mac_reduction infer 64"]
    results["compact_vs_masked"] = headline["compact_vs_masked infer 64"]
    return {"structured": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--peak-of", nargs=3, metavar=("MODEL", "KEEP", "VARIANT"),
                        help=argparse.SUPPRESS)  # fmt: skip
    arguments = parser.parse_args()
    if arguments.peak_of:
        name, keep, variant = arguments.peak_of
        peak_here(name, float(keep), variant)
        return
    results = bench(torch.device(arguments.device), arguments.rounds)
    kept = json.loads(arguments.out.read_text()) if arguments.out.is_file() else {}
    arguments.out.write_text(json.dumps({**kept, **results}, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results["structured"].items() if "keep" not in k}))


if __name__ == "__main__":
    main()
