"""The data's identity: a digest of what a .beton holds, not of how FFCV laid it out. FFCV's
parallel writers place samples in the order they finish, so two writings of one split may
differ in their bytes; the digest must not, and must change when one pixel or label does."""

import numpy as np
import pytest
from ffcv.types import HeaderType

from scale_lth.data.info import content_digest
from scale_lth.data.sources import in_memory
from scale_lth.data.writing import GrayAsArray, ImageOptions, image_field, write_beton


def write_split(path, images, labels, workers, write_mode="raw"):
    """``images`` (gray or colour) and their labels as the .beton ``path``, as `data write`
    stores them."""
    from ffcv.fields import IntField

    options = ImageOptions(write_mode=write_mode)
    fields = {"image": image_field(images[0], options), "label": IntField()}
    split = in_memory(images, labels, 10)
    write_beton(GrayAsArray(split) if images.ndim == 3 else split, fields, path, workers)


def write(path, images, labels, workers):
    write_split(path, images, labels, workers)
    return content_digest(path)


def relaid(path, out):
    """``path`` with samples 0 and 1 swapped in the file (their bytes, the allocation table's
    and the metadata's offsets to them): the same content, laid out as another writing might."""
    from ffcv.reader import Reader

    reader = Reader(str(path))
    raw = bytearray(path.read_bytes())
    table, metadata = reader.alloc_table.copy(), reader.metadata.copy()
    a, b = (int(np.flatnonzero(table["sample_id"] == sample)[0]) for sample in (0, 1))
    (pa, pb), size = (int(table["ptr"][a]), int(table["ptr"][b])), int(table["size"][a])
    assert int(table["size"][b]) == size  # one image size: the swap keeps every offset valid
    raw[pa : pa + size], raw[pb : pb + size] = raw[pb : pb + size], raw[pa : pa + size]
    table["ptr"][a], table["ptr"][b] = pb, pa
    metadata["f0"][0], metadata["f0"][1] = pb, pa  # an array field's metadata is its offset
    where = reader.header["alloc_table_ptr"]
    raw[where : where + table.nbytes] = table.tobytes()
    start = HeaderType.itemsize + reader.field_descriptors.nbytes
    raw[start : start + metadata.nbytes] = metadata.tobytes()
    out.write_bytes(bytes(raw))
    return out


def test_the_digest_is_that_of_the_content_wherever_the_samples_lie(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (100, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 10, 100)
    digest = write(tmp_path / "written.beton", images, labels, workers=1)
    moved = relaid(tmp_path / "written.beton", tmp_path / "moved.beton")
    assert moved.read_bytes() != (tmp_path / "written.beton").read_bytes()
    assert content_digest(moved) == digest


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 3)], ids=["gray", "colour"])
def test_the_digest_follows_the_content_not_the_layout(tmp_path, shape):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2000, *shape), dtype=np.uint8)
    labels = rng.integers(0, 10, 2000)
    alone = write(tmp_path / "one.beton", images, labels, workers=1)
    for attempt in range(2):  # parallel writers, each writing laid out as it happens
        assert write(tmp_path / f"two-{attempt}.beton", images, labels, workers=2) == alone
    pixel = images.copy()
    pixel[1234, 3, 3] ^= 1
    assert write(tmp_path / "pixel.beton", pixel, labels, workers=1) != alone
    label = labels.copy()
    label[7] = (label[7] + 1) % 10
    assert write(tmp_path / "label.beton", images, label, workers=1) != alone
