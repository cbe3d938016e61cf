"""The loader's normalisation: uint8 pixels as FFCV hands them over in, ``(x - mean) / std`` out,
bit for bit the textbook expression, in the memory layout asked for."""

import dataclasses

import torch

from scale_lth.data import DataInfo
from scale_lth.data.loaders import Batches


def test_normalised_equals_the_textbook_expression_in_either_layout(digits_dir):
    info = dataclasses.replace(
        DataInfo.load(digits_dir), layout="rgb", mean=[120.5, 3.0, 250.0], std=[60.0, 7.5, 1.5]
    )
    pixels = torch.randint(0, 256, (5, 9, 11, 3), dtype=torch.uint8)
    mean = torch.tensor(info.mean).view(1, 3, 1, 1)
    std = torch.tensor(info.std).view(1, 3, 1, 1)
    for channels_last in (False, True):
        handed = pixels.permute(0, 3, 1, 2)  # FFCV's ToTorchImage: a channels-last view, or
        handed = handed if channels_last else handed.contiguous()  # a contiguous copy
        got = Batches([], info, torch.device("cpu"), channels_last).normalised(handed)
        assert torch.equal(got, (handed.float() - mean) / std)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        assert got.is_contiguous(memory_format=layout)
