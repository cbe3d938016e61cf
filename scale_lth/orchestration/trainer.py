"""Ray Train's ``TorchTrainer`` without the helpers a lottery has no use for.

Some of Ray Train's default callbacks start a helper actor beside the worker group, each a
Python process of its own importing Ray (about 2 s of CPU each, more where it imports Ray
Data), all at the worker group's start. Two of them serve a lottery nothing, or nothing on
the local Ray it starts for itself:

- ``DatasetsCallback``'s ``DatasetManager`` serves Ray Data shards. A lottery's data come from
  FFCV files read in each worker, never from Ray Data: it is never started.
- ``PlacementGroupCleanerCallback``'s cleaner is a detached actor that removes the worker
  group's placement group if the controller dies while the cluster lives on. On a cluster the
  user started (``scaling.address``, RAY_ADDRESS, a SLURM allocation's Ray) it stays. The
  local Ray a lottery starts for itself ends with the driver, placement groups and all, and
  the cleaner's polling needs Ray's dashboard (its state API), which that Ray then need not
  run: there it is left out (``own_ray``).
"""

from __future__ import annotations

from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import (
    PlacementGroupCleanerCallback,
)
from ray.train.v2._internal.execution.callback import RayTrainCallback
from ray.train.v2.torch.torch_trainer import TorchTrainer  # Ray Train v2, as everywhere here


class LotteryTrainer(TorchTrainer):
    def __init__(self, *args, own_ray: bool, **kwargs) -> None:
        self.own_ray = own_ray
        super().__init__(*args, **kwargs)

    def _create_default_callbacks(self) -> list[RayTrainCallback]:
        unused: tuple[type, ...] = (DatasetsCallback,)
        if self.own_ray:
            unused += (PlacementGroupCleanerCallback,)
        return [c for c in super()._create_default_callbacks() if not isinstance(c, unused)]
