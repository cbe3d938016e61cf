"""Mask analytics against hand counts: Jaccard overlaps, chance overlap, per-layer densities,
layer collapse, and which masks each overlap compares."""

import itertools

import pytest
import torch

from scale_lth.pruning import Mask
from scale_lth.report.masks import (
    analyse,
    chance_overlap,
    collapse,
    collapse_warnings,
    format_overlaps,
    jaccard,
    mask_metrics,
)
from scale_lth.results import Layout, RunKey


def mask(**layers) -> Mask:
    return Mask({name: torch.tensor(flags, dtype=torch.bool) for name, flags in layers.items()})


def test_jaccard_is_shared_over_either_across_layers():
    a = mask(w=[[1, 1, 0, 0]], v=[1, 1])
    b = mask(w=[[1, 0, 1, 0]], v=[1, 0])
    # shared: w 1 + v 1 = 2; either: w 3 + v 2 = 5
    assert jaccard(a, b) == pytest.approx(2 / 5)
    assert jaccard(a, a) == 1.0


def test_chance_overlap_matches_the_mean_over_every_pair_of_random_masks():
    # one layer of 6 weights keeping 2: average the Jaccard index over all pairs of 2-subsets
    subsets = list(itertools.combinations(range(6), 2))
    indices = [set(s) for s in subsets]
    mean = sum(len(a & b) / len(a | b) for a in indices for b in indices) / len(indices) ** 2
    flags = [[1, 1, 0, 0, 0, 0]]
    # the formula is the ratio of the expectations, sum(k^2/n) / sum(2k - k^2/n): 2/3 / (10/3)
    assert chance_overlap(mask(w=flags)) == pytest.approx((4 / 6) / (4 - 4 / 6))
    assert chance_overlap(mask(w=flags)) == pytest.approx(mean, rel=0.25)  # close to the mean


def test_collapse_finds_empty_layers_and_units_without_inputs():
    found = collapse(
        mask(
            full=[[1, 0], [0, 1]],
            unit=[[1, 1, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]],
            empty=[[0, 0], [0, 0]],
            bias=[1, 0],
        )
    )
    assert found == ["2 of 4 units of unit keep no input", "empty keeps no weight"]


def finished(layout: Layout, key: RunKey, keep: Mask | None) -> None:
    layout.write_metrics(key, {"final_accuracy": 0.5})
    if keep is not None:
        keep.save(layout.mask_path(key))


def test_analyse_compares_levels_replicates_and_methods(tmp_path):
    layout = Layout(tmp_path)
    level1 = [mask(w=[[1, 1, 1, 0]]), mask(w=[[0, 1, 1, 1]])]  # per replicate
    level2 = [mask(w=[[1, 1, 0, 0]]), mask(w=[[0, 1, 1, 0]])]
    snip2 = [mask(w=[[0, 0, 1, 1]]), mask(w=[[0, 1, 1, 0]])]
    for replicate in (0, 1):
        finished(layout, RunKey(replicate, 0), None)
        finished(layout, RunKey(replicate, 1), level1[replicate])
        finished(layout, RunKey(replicate, 2), level2[replicate])
        finished(layout, RunKey(replicate, 2, "snip"), snip2[replicate])
    analytics = analyse(layout)
    assert analytics.densities == {
        "main": {"w": {1: 0.75, 2: 0.5}},
        "snip": {"w": {2: 0.5}},
    }
    found = {(o.kind, o.level, o.second): o for o in analytics.overlaps}
    # level 1 -> 2, per replicate: 2/3 and 2/3
    assert found[("levels", 2, "level 2")].jaccard == pytest.approx(2 / 3)
    # replicates at level 1: {0,1,2} vs {1,2,3} = 2/4; at level 2: {0,1} vs {1,2} = 1/3
    assert found[("replicates", 1, "replicate")].jaccard == pytest.approx(1 / 2)
    assert found[("replicates", 2, "replicate")].jaccard == pytest.approx(1 / 3)
    # trunk vs snip at level 2: replicate 0 {0,1} vs {2,3} = 0, replicate 1 equal = 1
    assert found[("methods", 2, "snip")].jaccard == pytest.approx(1 / 2)
    assert found[("methods", 2, "snip")].chance == pytest.approx((4 / 4) / (4 - 4 / 4))
    assert len(analytics.overlaps) == 4
    only_first = analyse(layout, replicates={0})
    assert {(o.kind, o.level): o.jaccard for o in only_first.overlaps} == {
        ("levels", 2): pytest.approx(2 / 3),
        ("methods", 2): 0.0,
    }
    assert ("mask_jaccard_snip", 0.0, 2) in mask_metrics(only_first)
    assert ("layer_density/w", 0.75, 1) in mask_metrics(only_first)
    lines = format_overlaps(analytics).splitlines()
    assert lines[1].split() == ["level", "previous", "level", "replicates", "snip"]
    assert lines[4].split() == ["2", "0.667", "(0.600)", "0.333", "(0.333)", "0.500", "(0.333)"]
    assert not any("warning" in line for line in lines)


def test_collapse_warns_once_per_branch_from_its_first_level(tmp_path):
    layout = Layout(tmp_path)
    finished(layout, RunKey(0, 1), mask(w=[[1, 0], [1, 1]]))
    finished(layout, RunKey(0, 2), mask(w=[[0, 0], [1, 0]]))
    finished(layout, RunKey(0, 3), mask(w=[[0, 0], [0, 0]]))
    finished(layout, RunKey(0, 2, "snip"), mask(w=[[1, 1], [0, 0]]))
    analytics = analyse(layout)
    assert len(analytics.collapse) == 3
    assert collapse_warnings(analytics) == [
        "warning: layer collapse in main from level 2 on (replicate 0: 1 of 2 units of w keep "
        "no input); every finding in report/masks.json",
        "warning: layer collapse in snip from level 2 on (replicate 0: 1 of 2 units of w keep "
        "no input); every finding in report/masks.json",
    ]
