"""The numpy-only .beton reader the data checks use reads what FFCV's own ``Reader`` reads, on
files FFCV wrote: gray images as arrays, colour images raw and as JPEG, with integer labels;
and a file cut anywhere holds fewer records than it announces, or does not read at all."""

import numpy as np
import pytest

from scale_lth.data.beton import read_beton
from tests.data.test_digest import write_split


def written(path, shape, write_mode):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (50, *shape), dtype=np.uint8)
    write_split(path, images, rng.integers(0, 10, 50), workers=1, write_mode=write_mode)
    return path


@pytest.mark.parametrize(
    ("shape", "write_mode"),
    [((8, 8), "raw"), ((8, 8, 3), "raw"), ((16, 16, 3), "jpg")],
    ids=["gray", "colour", "jpeg"],
)
def test_it_reads_what_ffcv_reads(tmp_path, shape, write_mode):
    from ffcv.reader import Reader

    path = written(tmp_path / "split.beton", shape, write_mode)
    ours, theirs = read_beton(path), Reader(str(path))
    assert ours.num_samples == theirs.num_samples == 50
    assert ours.field_names == theirs.field_names == ["image", "label"]
    assert ours.field_kinds == [type(handler).__name__ for handler in theirs.handlers.values()]
    assert ours.metadata.dtype == theirs.metadata.dtype
    assert ours.metadata.tobytes() == theirs.metadata.tobytes()
    assert np.array_equal(ours.alloc_table, theirs.alloc_table)


def test_a_cut_file_holds_fewer_records_or_does_not_read(tmp_path):
    path = written(tmp_path / "split.beton", (8, 8, 3), "raw")
    whole = path.read_bytes()
    table_at = int(np.frombuffer(whole[16:24], "<u8")[0])  # where the allocation table starts
    for keep in (10, 600, table_at - 10, len(whole) - 10):
        cut = tmp_path / f"cut{keep}.beton"
        cut.write_bytes(whole[:keep])
        try:
            beton = read_beton(cut)
        except ValueError:
            continue
        assert len(beton.metadata) < beton.num_samples or len(beton.alloc_table) < 50, keep
