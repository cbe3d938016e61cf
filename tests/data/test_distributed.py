"""Two DDP ranks (gloo) reading one .beton with distributed=True see disjoint shards that
cover the split, reshuffled each epoch, the same whether the split is held decoded or streamed
by FFCV; evaluation shards cover every example exactly once."""

import json
import os
import socket

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from scale_lth.data import LoaderOptions, eval_batches, train_batches, write_splits
from scale_lth.data.sources import Split

pytestmark = [pytest.mark.integration]  # two new interpreters (torch.multiprocessing.spawn)

SIZE = 120  # divisible by the 2 ranks: DistributedSampler pads nothing
EVAL_SIZE = 45  # odd: the evaluation shards must still cover it exactly once


def indexed(size: int) -> Split:
    """Images whose label is their own index, so a batch says which examples it holds."""
    return Split(size, lambda i: (np.full((4, 4), i % 256, np.uint8), i), num_classes=size)


def read_shards(rank: int, folder: str, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    train = train_batches(folder, 10, seed=3, distributed=True)
    epochs = [[int(y) for _, labels in train for y in labels] for _ in range(2)]
    streamed = train_batches(
        folder, 10, seed=3, distributed=True, options=LoaderOptions(keep_decoded_bytes=0)
    )
    assert epochs == [[int(y) for _, labels in streamed for y in labels] for _ in range(2)]
    evaluation = eval_batches(folder, "val", 8, rank=rank, world_size=2)
    seen = [int(y) for _, labels in evaluation for y in labels]
    with open(f"{out}/rank{rank}.json", "w") as file:
        json.dump({"epochs": epochs, "eval": seen, "batches": len(train)}, file)
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_ranks_read_disjoint_covering_reshuffled_shards(tmp_path):
    folder = tmp_path / "indexed"
    write_splits({"train": indexed(SIZE), "val": indexed(EVAL_SIZE)}, folder, source="synthetic")
    mp.spawn(read_shards, args=(str(folder), free_port(), str(tmp_path)), nprocs=2)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for epoch in range(2):
        first, second = (set(rank["epochs"][epoch]) for rank in ranks)
        assert len(ranks[0]["epochs"][epoch]) == len(ranks[1]["epochs"][epoch]) == SIZE // 2
        assert not first & second
        assert first | second == set(range(SIZE))
    for rank in ranks:
        assert rank["batches"] == SIZE // 2 // 10
        assert rank["epochs"][0] != rank["epochs"][1]  # a new order each epoch
        assert set(rank["epochs"][0]) != set(rank["epochs"][1])  # and a new shard
    evaluated = ranks[0]["eval"] + ranks[1]["eval"]
    assert sorted(evaluated) == list(range(EVAL_SIZE))
