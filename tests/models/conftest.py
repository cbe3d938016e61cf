from collections.abc import Callable
from functools import cache

import pytest
import torch
from torch import nn

from scale_lth import models


@pytest.fixture(scope="session")
def built() -> Callable[[str], nn.Module]:
    """Each model with default options, built once from seed 0; tests must not modify them."""

    @cache
    def build(name: str) -> nn.Module:
        torch.manual_seed(0)
        return models.build(name).eval()

    return build
