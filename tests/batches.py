"""In-memory training data and masks for tests of the training loop (no FFCV files)."""

import torch

from scale_lth import models
from scale_lth.pruning import Mask
from scale_lth.training.loop import Cadence, RunData
from scale_lth.training.schedule import Schedule


class ListBatches:
    """An in-memory stand-in for a loader: fixed batches, an ``epoch`` like FFCV's."""

    def __init__(self, batches):
        self.batches = batches
        self.epoch = 0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def random_data(seed: int = 0, device: str | torch.device = "cpu") -> RunData:
    """Five training batches of 16 random 1x8x8 images with 10 classes; two as 'val', two as
    'test'; on ``device``."""
    generator = torch.Generator().manual_seed(seed)
    batches = [
        (
            torch.randn(16, 1, 8, 8, generator=generator).to(device),
            torch.randint(0, 10, (16,), generator=generator).to(device),
        )
        for _ in range(5)
    ]
    return RunData(ListBatches(batches), {"val": batches[:2], "test": batches[2:4]})


def half_mask(model) -> Mask:
    """A seeded random mask keeping about half of each prunable tensor."""
    parameters = dict(model.named_parameters())
    generator = torch.Generator().manual_seed(3)
    return Mask(
        {
            n: torch.rand(parameters[n].shape, generator=generator) < 0.5
            for n in models.prunable(model)
        }
    )


def plain_steps(training, data, checkpoint_every=0, save_points=None) -> dict:
    """``train_run``'s step counts for ``training`` over ``data``'s epochs (the driver's job),
    checkpointing and saving where asked."""
    per_epoch = len(data.train)
    cadence = Cadence(
        eval_every=training.eval_every.iterations(per_epoch),
        checkpoint_every=checkpoint_every,
        save_points=save_points or {},
    )
    return {"schedule": Schedule.of(training, per_epoch), "cadence": cadence}
