"""SNIP: connection sensitivity as in Lee et al. (2019) Eq. 6, and exact keep counts."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from scale_lth import models
from scale_lth.pruning import snip_prune, snip_scores


def small_network() -> torch.nn.Module:
    torch.manual_seed(0)
    return models.build("conv2", num_classes=5, in_channels=1, image_size=8)


def batches(count: int = 2):
    generator = torch.Generator().manual_seed(1)
    inputs = [torch.randn(6, 1, 8, 8, generator=generator) for _ in range(count)]
    targets = [torch.randint(0, 5, (6,), generator=generator) for _ in range(count)]
    return inputs, targets


def eq6_reference(model, inputs, targets):
    """g_j = dL(c * w)/dc_j at c = 1, through an explicit connection indicator c;
    s_j = |g_j| / sum_k |g_k| (Eq. 6)."""
    names = models.prunable(model)
    parameters = {name: p.detach() for name, p in model.named_parameters()}
    indicators = {name: torch.ones_like(parameters[name], requires_grad=True) for name in names}
    masked = dict(parameters)
    masked.update({name: parameters[name] * indicators[name] for name in names})
    loss = sum(
        F.cross_entropy(functional_call(model, masked, (x,)), y)
        for x, y in zip(inputs, targets, strict=True)
    ) / len(inputs)
    gradients = torch.autograd.grad(loss, [indicators[n] for n in names])
    total = sum(g.abs().double().sum() for g in gradients)
    return {name: (g.abs().double() / total) for name, g in zip(names, gradients, strict=True)}


def test_scores_equal_an_independent_computation_of_eq6():
    model = small_network()
    inputs, targets = batches()
    ours = snip_scores(model, inputs, targets)
    reference = eq6_reference(model, inputs, targets)
    assert set(ours) == set(reference)
    for name in ours:
        torch.testing.assert_close(ours[name].double(), reference[name], rtol=1e-6, atol=1e-12)
    assert sum(float(s.double().sum()) for s in ours.values()) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("density", [0.5, 0.1, 0.0123, 1.0])
def test_snip_prune_keeps_exactly_the_requested_count_of_top_scores(density):
    model = small_network()
    inputs, targets = batches(1)
    mask = snip_prune(model, inputs[0], targets[0], density)
    assert mask.num_kept == round(density * mask.num_total)
    scores = snip_scores(model, inputs[0], targets[0])
    kept = torch.cat([scores[n][mask[n]] for n in mask])
    dropped = torch.cat([scores[n][~mask[n]] for n in mask])
    if kept.numel() and dropped.numel():
        assert kept.min() >= dropped.max()


def test_scores_leave_the_model_untouched():
    model = small_network()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    snip_scores(model, *batches(1))
    assert all(torch.equal(before[n], p) and p.grad is None for n, p in model.named_parameters())
