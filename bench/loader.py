"""The training loader against torchvision's and against a bare FFCV Loader, on the same real
JPEG photos at ImageNet-like sizes.

The photos are crops (256 to 427 pixels a side) of scikit-learn's two sample photos, saved as
JPEGs in ImageNet's folder layout and written to .beton by `scale-lth data write --source
imagefolder --write-mode jpg`. Every loader does RandomResizedCrop to 160 px and a horizontal
flip, shuffles, batches of 64, with the same number of CPU workers:

- scale-lth: ``train_batches`` (FFCV, normalised float tensors out);
- bare FFCV: a ``Loader`` with the same decoder and flip, uint8 tensors out;
- torchvision: ``ImageFolder`` + ``DataLoader`` with ``RandomResizedCrop``, ``RandomHorizontal
  Flip``, ``ToTensor`` and ``Normalize`` (its usual recipe), persistent workers.

Epochs are interleaved, after a warm-up epoch of each, and the medians compared:
``vs_torchvision`` (target >= 3.5) and ``vs_raw_ffcv`` (target >= 0.9). The profile beside
them says where a batch's time goes: each loader's milliseconds per batch, and what the
project's normalisation to float tensors (its one step beyond bare FFCV) costs alone on a
batch of the same shape. Writes its key into bench/results.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results.json")
SIDE, BATCH = 160, 64


def sample_photos(folder: Path | None = None) -> list[np.ndarray]:
    """scikit-learn's two sample photos, from the package or from a folder of their JPEGs
    (where scikit-learn is not installed: bench/gpu/bundle.sh copies them)."""
    from PIL import Image

    if folder is None:
        from sklearn.datasets import load_sample_images

        return load_sample_images().images
    return [np.asarray(Image.open(path).convert("RGB")) for path in sorted(folder.glob("*.jpg"))]


def write_photos(root: Path, count: int, classes: int = 8, photos: Path | None = None) -> None:
    from PIL import Image

    photos = sample_photos(photos)
    rng = np.random.default_rng(0)
    for split, total in (("train", count), ("val", classes)):
        for index in range(total):
            label = index % classes
            folder = root / split / f"n{label:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            photo = photos[index % len(photos)]
            height, width = rng.integers(256, 428, 2)
            top = rng.integers(0, photo.shape[0] - height + 1)
            left = rng.integers(0, photo.shape[1] - width + 1)
            crop = photo[top : top + height, left : left + width]
            Image.fromarray(crop).save(folder / f"{index}.JPEG", quality=90)


def epoch_rate(batches) -> float:
    started, images = time.perf_counter(), 0
    for batch in batches:
        images += len(batch[1])
    return images / (time.perf_counter() - started)


def loaders(root: Path, written: Path, threads: int) -> dict:
    import torch
    import torchvision.transforms as T
    from ffcv.fields.basics import IntDecoder
    from ffcv.fields.decoders import RandomResizedCropRGBImageDecoder
    from ffcv.loader import Loader, OrderOption
    from ffcv.transforms import RandomHorizontalFlip, Squeeze, ToTensor, ToTorchImage
    from torchvision.datasets import ImageFolder

    from scale_lth.data import LoaderOptions, train_batches

    project = train_batches(
        written, BATCH, seed=0, options=LoaderOptions(threads=threads, resolution=SIDE)
    )
    raw = Loader(
        str(written / "train.beton"),
        batch_size=BATCH,
        num_workers=threads,
        order=OrderOption.RANDOM,
        drop_last=True,
        pipelines={
            "image": [
                RandomResizedCropRGBImageDecoder((SIDE, SIDE)),
                RandomHorizontalFlip(),
                ToTensor(),
                ToTorchImage(),
            ],
            "label": [IntDecoder(), ToTensor(), Squeeze(1)],
        },
    )
    transform = T.Compose([
        T.RandomResizedCrop(SIDE),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])  # fmt: skip
    folder = torch.utils.data.DataLoader(
        ImageFolder(str(root / "train"), transform=transform),
        batch_size=BATCH,
        shuffle=True,
        drop_last=True,
        num_workers=threads,
        persistent_workers=True,
    )
    return {"scale_lth": project, "raw_ffcv": raw, "torchvision": folder}


def normalisation_ms(written: Path, repeats: int = 20) -> float:
    """The project's normalisation (``Batches``, uint8 to normalised float) of one batch, alone:
    the median milliseconds over ``repeats`` batches."""
    import torch

    from scale_lth.data import DataInfo
    from scale_lth.data.loaders import Batches

    batch = torch.randint(0, 256, (BATCH, 3, SIDE, SIDE), dtype=torch.uint8)
    labels = torch.zeros(BATCH, dtype=torch.int32)
    normalised = Batches([(batch, labels)], DataInfo.load(written), torch.device("cpu"), False)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        next(iter(normalised))
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def bench(count: int, rounds: int, threads: int) -> dict:
    from scale_lth.cli import main as scale_lth

    with tempfile.TemporaryDirectory(prefix="scale-lth-loader-") as folder:
        root, written = Path(folder) / "photos", Path(folder) / "written"
        write_photos(root, count)
        arguments = ["data", "write", "--source", "imagefolder", "--root", str(root),
                     "--out", str(written), "--write-mode", "jpg"]  # fmt: skip
        if scale_lth(arguments) != 0:
            raise RuntimeError("writing the photos failed")
        normalise = normalisation_ms(written)  # alone, before any loader's threads exist
        made = loaders(root, written, threads)
        rates: dict[str, list[float]] = {name: [] for name in made}
        for batches in made.values():
            epoch_rate(batches)  # warm-up: numba compiles, workers start, files are cached
        for _ in range(rounds):
            for name, batches in made.items():
                rates[name].append(epoch_rate(batches))
    median = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "loader": {
            "images": count,
            "resolution": SIDE,
            "threads": threads,
            "rounds": rounds,
            "images_per_second": median,
            "vs_torchvision": median["scale_lth"] / median["torchvision"],
            "vs_raw_ffcv": median["scale_lth"] / median["raw_ffcv"],
            "profile": {
                "ms_per_batch": {name: 1000 * BATCH / rate for name, rate in median.items()},
                "normalisation_ms_per_batch": normalise,
                "raw_ffcv_vs_torchvision": median["raw_ffcv"] / median["torchvision"],
            },
        }
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    results = bench(arguments.images, arguments.rounds, arguments.threads)
    kept = json.loads(arguments.out.read_text()) if arguments.out.is_file() else {}
    arguments.out.write_text(json.dumps({**kept, **results}, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
