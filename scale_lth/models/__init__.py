"""The networks of the LTH papers, each declaring which weights are prunable by default.

``build(name)`` makes one; ``prunable(model)`` and ``output_layer(model)`` read its declaration
(through DistributedDataParallel and torch.compile wrappers too).
"""

from scale_lth.models.declarations import output_layer, prunable, unwrap
from scale_lth.models.registry import build, names, options

__all__ = ["build", "names", "options", "output_layer", "prunable", "unwrap"]
