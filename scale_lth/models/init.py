"""The Lottery Ticket Hypothesis paper's initialisation: Gaussian Glorot.

Frankle & Carbin (2019) initialise every network with Gaussian Glorot (``xavier_normal_``).
Biases start at zero, BatchNorm at weight 1 and bias 0. OpenLTH instead uses
``kaiming_normal_`` for conv/linear weights and draws BatchNorm weights uniformly from [0, 1);
we follow the paper.
"""

from torch import nn


def glorot_normal_init_(model: nn.Module) -> None:
    """Re-initialise ``model`` in place as in the LTH paper."""
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_normal_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
