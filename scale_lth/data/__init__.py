"""Data as FFCV ``.beton`` files: writing them from what a user has, and loading them."""

from scale_lth.data.errors import DataError
from scale_lth.data.info import DataInfo
from scale_lth.data.loaders import (
    Batches,
    LoaderOptions,
    eval_batches,
    subsample,
    train_batches,
)
from scale_lth.data.preparation import ensure_written, planned_info
from scale_lth.data.writing import ImageOptions, write_splits

__all__ = [
    "Batches",
    "DataError",
    "DataInfo",
    "ImageOptions",
    "LoaderOptions",
    "ensure_written",
    "planned_info",
    "eval_batches",
    "subsample",
    "train_batches",
    "write_splits",
]
