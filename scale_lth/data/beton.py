"""What a .beton file says of itself (its header, fields, per-sample metadata and allocation
table), read with numpy alone.

FFCV's own ``Reader`` gives the same, but importing any part of FFCV builds numba code (a
typed dictionary, in ``ffcv.fields.rgb_image``) for about three seconds: every command's data
check would pay it before anything else starts, and the driver never decodes an image. The
layout is FFCV's format version 2, all little-endian: a header; one descriptor per field (its
type id, a 16-byte name and 1,024 bytes of arguments); one metadata record per sample, each
field's metadata side by side with C alignment; and, where the header points, the allocation
table (sample id, offset and size of each stored piece). tests/data/test_beton.py reads files
FFCV wrote both ways and finds the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

VERSION = 2
HEADER = np.dtype(
    [
        ("version", "<u2"),
        ("num_fields", "<u2"),
        ("page_size", "<u4"),
        ("num_samples", "<u8"),
        ("alloc_table_ptr", "<u8"),
    ],
    align=True,
)
FIELD = np.dtype(
    [("type_id", "<u1"), ("name", ("<u1", 16)), ("arguments", ("<u1", 1024))], align=True
)
ALLOCATION = np.dtype([("sample_id", "<u8"), ("ptr", "<u8"), ("size", "<u8")])
# Each field type's name in FFCV and the metadata it keeps per sample, by type id.
POINTER_AND_SIZE = np.dtype([("ptr", "<u8"), ("size", "<u8")])
FIELD_TYPES: dict[int, tuple[str, np.dtype]] = {
    0: ("FloatField", np.dtype("<f8")),
    1: ("IntField", np.dtype("<i8")),
    2: (
        "RGBImageField",
        np.dtype([("mode", "<u1"), ("width", "<u2"), ("height", "<u2"), ("data_ptr", "<u8")]),
    ),
    3: ("BytesField", POINTER_AND_SIZE),
    4: ("NDArrayField", np.dtype("<u8")),  # where the array's bytes start
    5: ("JSONField", POINTER_AND_SIZE),
    6: ("TorchTensorField", np.dtype("<u8")),
}


@dataclass(frozen=True)
class Beton:
    num_samples: int
    field_names: list[str]
    field_kinds: list[str]  # FFCV's field type names, in the fields' order
    metadata: np.ndarray  # one record per sample that the file holds, fields f0, f1, ...
    alloc_table: np.ndarray


def read_beton(path: Path) -> Beton:
    """``path``'s header and tables. A file that is not a .beton of this format raises
    ValueError; one cut short holds fewer metadata records or table rows than it announces."""
    header = np.fromfile(path, dtype=HEADER, count=1)
    if len(header) != 1 or int(header["version"][0]) != VERSION:
        raise ValueError(f"not an FFCV format {VERSION} file")
    fields = np.fromfile(
        path, dtype=FIELD, count=int(header["num_fields"][0]), offset=HEADER.itemsize
    )
    if len(fields) != int(header["num_fields"][0]):
        raise ValueError("its field descriptors end early")
    unknown = sorted({int(i) for i in fields["type_id"]} - set(FIELD_TYPES))
    if unknown:
        raise ValueError(f"unknown field types {unknown}")
    kinds = [FIELD_TYPES[int(i)] for i in fields["type_id"]]
    record = np.dtype([("", metadata) for _, metadata in kinds], align=True)
    metadata = np.fromfile(
        path,
        dtype=record,
        count=int(header["num_samples"][0]),
        offset=HEADER.itemsize + fields.nbytes,
    )
    table = np.fromfile(path, dtype=ALLOCATION, offset=int(header["alloc_table_ptr"][0]))
    return Beton(
        num_samples=int(header["num_samples"][0]),
        field_names=[bytes(name).split(b"\0")[0].decode("ascii") for name in fields["name"]],
        field_kinds=[kind for kind, _ in kinds],
        metadata=metadata,
        alloc_table=table,
    )
