"""A stack of fully-connected ReLU layers ending in a linear output layer."""

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn


class FullyConnected(nn.Module):
    """Flattens its input, applies ``Linear -> ReLU -> Dropout`` per hidden width, then ``output``.

    Dropout (off when ``dropout=0``) follows the activation of every hidden layer; the LTH paper
    gives a rate for the Conv nets but does not say where it goes, so that placement is our choice.
    """

    def __init__(
        self,
        in_features: int,
        hidden_widths: Sequence[int],
        num_classes: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if in_features < 1:
            raise ValueError(f"in_features must be positive, got {in_features}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        widths = [in_features, *hidden_widths]
        self.hidden = nn.ModuleList(nn.Linear(*pair) for pair in pairwise(widths))
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        for layer in self.hidden:
            x = self.dropout(torch.relu(layer(x)))
        return self.output(x)
