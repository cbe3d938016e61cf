"""``scale-lth data write``: turn a data set the user has into ``.beton`` files."""

from __future__ import annotations

import argparse
from pathlib import Path

from scale_lth.data import sources
from scale_lth.data.errors import DataError
from scale_lth.data.writing import ImageOptions, write_splits

SOURCES = ("imagefolder", "cifar10", "mnist", "digits", "synthetic")


def add_write_parser(actions: argparse._SubParsersAction) -> None:
    write = actions.add_parser(
        "write",
        help="write a data set as train/val(/test).beton",
        description="Write train.beton, val.beton (and test.beton where the source has one) "
        "plus info.json into --out.",
    )
    write.add_argument("--source", required=True, choices=SOURCES, help="what --root holds")
    write.add_argument("--root", type=Path, help="the source's folder (not for digits/synthetic)")
    write.add_argument("--out", type=Path, required=True, help="folder for the .beton files")
    write.add_argument("--overwrite", action="store_true", help="replace existing files in --out")
    write.add_argument("--workers", type=int, default=None, help="writer processes (default: CPUs)")
    write.add_argument(
        "--holdout",
        type=int,
        default=None,
        help="imagefolder: training images held out as val for early stopping, the folder's "
        "val/ becoming test (default: 10,000 of ImageNet's 1,281,167, in proportion for a "
        "smaller folder; 0: val/ is the only evaluation split and doubles as test)",
    )
    images = write.add_argument_group("colour images (ffcv-imagenet's knobs)")
    images.add_argument(
        "--write-mode",
        choices=("raw", "jpg", "smart", "proportion"),
        default=None,
        help="default: proportion for imagefolder, raw otherwise",
    )
    images.add_argument("--max-resolution", type=int, default=None, help="longest side kept")
    images.add_argument("--jpeg-quality", type=int, default=90)
    images.add_argument(
        "--compress-probability", type=float, default=0.5, help="JPEG share in proportion mode"
    )
    synthetic = write.add_argument_group("synthetic data")
    synthetic.add_argument("--num-classes", type=int, default=10)
    synthetic.add_argument("--image-size", type=int, default=32)
    synthetic.add_argument(
        "--sizes", default="2000,500,500", help="train,val,test image counts (default 2000,500,500)"
    )
    synthetic.add_argument("--seed", type=int, default=0)
    write.set_defaults(func=run_write)


def _synthetic_sizes(text: str) -> tuple[int, int, int]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or min(sizes) < 1:
        raise DataError(f"--sizes must be three positive counts like 2000,500,500, got {text!r}")
    return sizes


def run_write(args: argparse.Namespace) -> int:
    if args.holdout is not None and args.source != "imagefolder":
        raise DataError(
            f"--holdout is for --source imagefolder; {args.source} has its own val split"
        )
    needs_root = args.source in ("imagefolder", "cifar10", "mnist")
    if needs_root and (args.root is None or not args.root.is_dir()):
        raise DataError(f"--source {args.source} needs --root, an existing folder, got {args.root}")
    if args.source == "synthetic":
        splits = sources.synthetic(
            args.num_classes, args.image_size, _synthetic_sizes(args.sizes), args.seed
        )
    elif args.source == "digits":
        splits = sources.digits()
    elif args.source == "imagefolder":
        splits = sources.imagefolder(args.root, args.holdout)
    else:
        splits = getattr(sources, args.source)(args.root)
    imagenet_like = args.source == "imagefolder" or (
        args.source == "synthetic" and args.image_size >= 64
    )
    options = ImageOptions(
        write_mode=args.write_mode or ("proportion" if args.source == "imagefolder" else "raw"),
        max_resolution=args.max_resolution,
        jpeg_quality=args.jpeg_quality,
        compress_probability=args.compress_probability,
    )
    info = write_splits(
        splits,
        args.out,
        source="imagenet" if args.source == "imagefolder" else args.source,
        image_options=options,
        overwrite=args.overwrite,
        imagenet_statistics=args.source == "imagefolder",
        augmentation="resized_crop_flip" if imagenet_like else "pad_crop_flip",
        workers=args.workers,
    )
    counts = ", ".join(f"{name} {count:,}" for name, count in info.splits.items())
    print(f"Wrote {args.out}: {counts} images, {info.num_classes} classes")
    return 0
