"""A split small enough to hold is decoded once, and reads exactly as FFCV streams it: the same
examples in the same order, the same normalised values bit for bit, epoch after epoch, and
from any epoch a resumed run restarts at."""

import torch

from scale_lth.data import LoaderOptions, eval_batches, train_batches
from scale_lth.data.loaders import Batches, Held

STREAMED = LoaderOptions(keep_decoded_bytes=0)


def epochs(batches, first: int, count: int) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    read = []
    for epoch in range(first, first + count):
        batches.epoch = epoch
        read.append([(images.clone(), labels.clone()) for images, labels in batches])
    return read


def assert_same(held, streamed) -> None:
    assert len(held) == len(streamed)
    for (images, labels), (expected_images, expected_labels) in zip(held, streamed, strict=True):
        assert images.dtype == expected_images.dtype and images.shape == expected_images.shape
        assert torch.equal(images, expected_images)
        assert torch.equal(labels, expected_labels)


def test_held_training_batches_equal_ffcv_streamed_ones_every_epoch(digits_dir):
    held = train_batches(digits_dir, 60, seed=5)
    streamed = train_batches(digits_dir, 60, seed=5, options=STREAMED)
    assert isinstance(held, Held) and isinstance(streamed, Batches)
    assert len(held) == len(streamed) == 1257 // 60  # the partial batch dropped
    first = epochs(held, 0, 3)
    for got, expected in zip(first, epochs(streamed, 0, 3), strict=True):
        assert_same(got, expected)
    assert not torch.equal(first[0][0][1], first[1][0][1])  # reshuffled each epoch
    for got, expected in zip(epochs(held, 7, 1), epochs(streamed, 7, 1), strict=True):
        assert_same(got, expected)  # a run resuming at epoch 7 reads what it would have


def test_held_evaluation_shards_equal_ffcv_streamed_ones(digits_dir):
    for rank in range(2):
        held = eval_batches(digits_dir, "test", 64, rank=rank, world_size=2)
        streamed = eval_batches(digits_dir, "test", 64, rank=rank, world_size=2, options=STREAMED)
        assert isinstance(held, Held) and isinstance(streamed, Batches)
        assert_same(list(held), list(streamed))
