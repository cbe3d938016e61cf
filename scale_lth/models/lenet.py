"""LeNet-300-100, the fully-connected network of the LTH paper (Frankle & Carbin 2019, Fig. 2)."""

from torch import nn

from scale_lth.models.declarations import declare, layer_weights
from scale_lth.models.fully_connected import FullyConnected
from scale_lth.models.init import glorot_normal_init_


def lenet300(*, num_classes: int = 10, input_size: int = 784) -> nn.Module:
    """Linear ``input_size``-300-100-``num_classes`` with ReLU; every weight is prunable.

    ``input_size`` is the flattened image size: 784 for MNIST (28x28), 64 for scikit-learn's
    digits (8x8). Images of any shape with that many pixels are flattened on the way in.
    """
    model = FullyConnected(input_size, (300, 100), num_classes)
    glorot_normal_init_(model)
    return declare(model, prunable=layer_weights(model), output_layer="output.weight")
