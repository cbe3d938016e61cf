"""Comparing a mask with a reference selection of the same count: magnitudes can tie (float32
values repeat among millions of weights), and which of several equal magnitudes at the cut is
removed is a tie-break that references need not share. Everywhere else they must agree."""

import torch


def assert_a_magnitude_cut(keep: dict, magnitudes: dict, alive: dict, what) -> None:
    """Of the ``alive`` entries of these tensors, ``keep`` removes the smallest magnitudes: no
    removed one is larger than a kept one."""
    removed = torch.cat([(alive[n] & ~keep[n]).flatten() for n in keep])
    kept = torch.cat([(alive[n] & keep[n]).flatten() for n in keep])
    values = torch.cat([magnitudes[n].flatten() for n in keep])
    if removed.any() and kept.any():
        largest, smallest = float(values[removed].max()), float(values[kept].min())
        assert largest <= smallest, (what, largest, smallest)


def assert_same_cut(ours: dict, reference: dict, magnitudes: dict, alive: dict, what) -> None:
    """``ours`` and ``reference`` (name -> bool keep) each remove the smallest of the ``alive``
    magnitudes, as many, and differ only at entries whose magnitude is the largest removed."""
    names = list(reference)
    assert_a_magnitude_cut({n: reference[n] for n in names}, magnitudes, alive, ("reference", what))
    assert_a_magnitude_cut({n: ours[n] for n in names}, magnitudes, alive, ("ours", what))
    removed = [(alive[n] & ~reference[n], alive[n] & ~ours[n]) for n in names]
    assert sum(int(r.sum()) for r, _ in removed) == sum(int(o.sum()) for _, o in removed), what
    pairs = zip(names, removed, strict=True)
    cut = max(float(magnitudes[n][r | o].max()) for n, (r, o) in pairs if (r | o).any())
    for name in names:
        differ = ours[name] != reference[name]
        assert bool((magnitudes[name][differ] == cut).all()), (
            what,
            name,
            cut,
            magnitudes[name][differ][:5].tolist(),
        )


def magnitudes_of(weights: dict, names) -> dict:
    return {name: weights[name].abs() for name in names}


def everything(masks: dict) -> dict:
    return {name: torch.ones_like(keep) for name, keep in masks.items()}
