"""Channel-level lotteries in this process (as tests/lottery/test_shipped_configs.py runs
configs), ResNet-20 on CIFAR-10 files (residual streams, BatchNorm, ranked globally) and every
shipped channel-level config (LeNet's units on digits, ranked per layer), checked against the
definitions from the files:
every mask removes whole channels (each removed channel's rows and columns, nothing else);
each level removes exactly ceil(0.2 x the alive channels) of the lowest mean |weight| of its
source level's trained weights (all together, or per group), never revives one and never
empties a group (its best channel stays: ranked globally, whole layers of small weights go);
reinit keeps the ticket's channels, random pruning as many per group, SNIP as many in total,
Scratch-B trains for the dense network's multiply-accumulates over the compacted ticket's;
pruned weights are exactly zero after training; and the trained ticket, compacted, computes
what the masked network does. `scale-lth compare` overlays a weight and a channel lottery, and
`scale-lth report` measures what each one's networks cost and plots accuracy against it."""

import json
import math

import pytest
import torch

from scale_lth.cli import main
from scale_lth.config import load
from scale_lth.driver import check
from scale_lth.lottery.job import Job
from scale_lth.lottery.network import pruned_groups
from scale_lth.lottery.runner import Runner
from scale_lth.models.flops import multiply_accumulates, weight_uses
from scale_lth.pruning import Mask
from scale_lth.pruning.channels import kept_channels
from scale_lth.pruning.compact import compact
from scale_lth.results import Layout, RunKey
from scale_lth.training.session import Session
from tests.conftest import CONFIGS
from tests.lottery.test_export import masked_network, trained
from tests.lottery.test_shipped_configs import CHANNEL_LEVEL, shrunk

LEVELS = 2


def mean_magnitudes(weights, group) -> torch.Tensor:
    rows = [weights[p.weight].abs().reshape(group.channels, -1) for p in group.producers]
    return torch.cat(rows, dim=1).sum(dim=1) / sum(r.shape[1] for r in rows)


CHANNEL_RUNS = [CONFIGS / "cifar10_resnet20.yaml", *CHANNEL_LEVEL]


@pytest.mark.parametrize("path", CHANNEL_RUNS, ids=[path.stem for path in CHANNEL_RUNS])
def test_a_channel_lottery_removes_whole_channels_by_definition(path, datasets, tmp_path):
    overrides = [
        *shrunk(path, datasets, tmp_path / "results"),
        "pruning.granularity=channel",
        "baselines.branches=[reinit, random_prune, snip, scratch_b]",
    ]
    config = load(path, overrides).resolved()
    assert config.pruning.layer_fractions == {}
    job = Job([0], range(LEVELS + 1), [config.run_branch(m) for m in config.baselines.branches])
    checked = check(config, job)
    runner = Runner(checked.config, Session(), checked.steps)
    runner.execute(job)
    layout, store = checked.layout, runner.store
    assert set(layout.finished()) == set(job.keys())
    groups = pruned_groups(config, store.probe)
    alive = [torch.ones(g.channels, dtype=torch.bool) for g in groups]
    for level in range(1, LEVELS + 1):
        ticket = Mask.load(layout.mask_path(RunKey(0, level)))
        kept = kept_channels(ticket, groups)
        assert ticket == store.channel_mask(groups, kept)  # whole channels, nothing else
        assert all(flags.any() for flags in kept)  # never empties a group
        assert not any((now & ~was).any() for now, was in zip(kept, alive, strict=True))
        source = torch.load(layout.final_path(RunKey(0, level - 1)))
        scores = [mean_magnitudes(source, group) for group in groups]
        together = [range(len(groups))] if config.pruning.scope == "global" else [
            [index] for index in range(len(groups))
        ]  # fmt: skip
        for members in together:
            was = sum(int(alive[i].sum()) for i in members)
            now = sum(int(kept[i].sum()) for i in members)
            assert was - now == math.ceil(config.pruning.fraction * was), (level, members)
            # the lowest scores go, passing over a group's last channel (its best one)
            removed = torch.cat([scores[i][alive[i] & ~kept[i]] for i in members])
            survived = torch.cat([scores[i][kept[i]] for i in members if kept[i].sum() > 1])
            assert removed.max() <= survived.min(), (level, members)
            for i in members:
                if kept[i].sum() == 1:
                    assert scores[i][kept[i]] == scores[i][alive[i]].max()
        masks = {key.method: Mask.load(layout.mask_path(key))
                 for key in layout.finished() if key.level == level}  # fmt: skip
        assert masks["reinit"] == ticket
        randomly = kept_channels(masks["random_prune"], groups)
        assert [int(f.sum()) for f in randomly] == [int(f.sum()) for f in kept]
        assert masks["random_prune"] != ticket
        snipped = kept_channels(masks["snip"], groups)
        assert sum(int(f.sum()) for f in snipped) == sum(int(f.sum()) for f in kept)
        assert masks["snip"] == store.channel_mask(groups, snipped)
        final = torch.load(layout.final_path(RunKey(0, level)))
        assert all(not final[n][~ticket[n]].any() for n in ticket)  # exactly zero
        network = store.network(final).eval()
        smaller = compact(network, groups, kept).eval()
        images = torch.randn(4, *network_input(store))
        with torch.no_grad():
            expected = network(images)
            # within 1e-5, relative where the outputs exceed 1 (a ResNet-50 four steps from its
            # start, its BatchNorm statistics barely moved, gives logits of ~60 in eval mode)
            bound = 1e-5 * max(1.0, float(expected.abs().max()))
            assert (smaller(images) - expected).abs().max() <= bound
        assert sum(p.numel() for p in smaller.parameters()) < sum(
            p.numel() for p in network.parameters()
        )
        # Scratch-B's budget: the dense network's multiply-accumulates over the compacted one's
        example = torch.zeros(1, *network_input(store))
        dense = multiply_accumulates(network, weight_uses(network, example))
        compacted = multiply_accumulates(smaller, weight_uses(smaller, example))
        factor = min(dense / compacted, config.baselines.scratch_b_max_factor)
        scratch_b = next(
            k for k in layout.finished() if k.level == level and k.method == "scratch_b"
        )
        assert layout.read_metrics(scratch_b)["compute_factor"] == factor
        alive = kept


def network_input(store) -> tuple[int, ...]:
    info = store.info
    size = store.config.data.resolution or info.shape[1]
    return (info.channels, size, size)


@pytest.fixture(scope="module")
def weight_and_channel(datasets, tmp_path_factory) -> dict[str, Layout]:
    """A weight and a channel lottery of LeNet-300-100 on the digits, one level each, by
    their ``pruning.granularity``."""
    folder = tmp_path_factory.mktemp("granularities")
    return {
        granularity: trained("digits_lenet", datasets, folder / granularity,
                             f"pruning.granularity={granularity}")
        for granularity in ("weight", "channel")
    }  # fmt: skip


@pytest.mark.integration  # its plot: matplotlib's first import lists the fonts (fc-list)
def test_compare_overlays_a_weight_and_a_channel_lottery(weight_and_channel, tmp_path, capsys):
    weights, channels = weight_and_channel["weight"], weight_and_channel["channel"]
    capsys.readouterr()
    command = ["compare", str(weights.root), str(channels.root), "--json"]
    assert main([*command, "--out", str(tmp_path / "compared")]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_label = {"pruning.granularity=weight": weights, "pruning.granularity=channel": channels}
    assert {row["experiment"] for row in rows} == set(by_label)
    for label, layout in by_label.items():
        ticket = next(r for r in rows if r["experiment"] == label and r["level"] == 1)
        assert ticket["weights_remaining"] == Mask.load(layout.mask_path(RunKey(0, 1))).density
    assert (tmp_path / "compared" / "accuracy.png").stat().st_size > 10_000


@pytest.mark.integration  # its plots
def test_the_report_plots_accuracy_against_what_weight_and_channel_tickets_cost(
    weight_and_channel, capsys
):
    for granularity, layout in weight_and_channel.items():
        capsys.readouterr()
        assert main(["report", str(layout.root), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        recorded = json.loads(layout.cost_path.read_text())
        assert set(recorded["runs"]) == {key.run_id for key in layout.finished()}
        network, _ = masked_network(layout, RunKey(0, 1))
        mask = Mask.load(layout.mask_path(RunKey(0, 1)))
        weights = dict(network.named_parameters())
        # LeNet's linear weights are each used once per example: the kept weights, counted here
        # from the mask (a channel ticket's compacted network keeps exactly those)
        kept = sum(int(mask[n].sum()) if n in mask else p.numel() for n, p in weights.items()
                   if n.endswith("weight"))  # fmt: skip
        ticket = recorded["runs"][RunKey(0, 1).run_id]
        assert ticket["macs"] == kept
        dense = recorded["runs"][RunKey(0, 0).run_id]
        assert dense["macs"] == sum(p.numel() for n, p in weights.items() if n.endswith("weight"))
        if granularity == "weight":  # the dense-shaped network runs it: one latency
            assert ticket["latency_ms"] == dense["latency_ms"]
            biases = sum(p.numel() for n, p in weights.items() if n.endswith("bias"))
        else:  # compacted: the bias of every unit it keeps
            biases = sum(int(mask[n].any(dim=1).sum()) for n in mask)
        assert ticket["parameters"] == kept + biases
        rows = {(row["level"], row["branch"]): row for row in report["rows"]}
        assert rows[(1, "main")]["macs"] == ticket["macs"]
        assert rows[(1, "main")]["latency_ms"] == ticket["latency_ms"]["64"]
        for name in ("accuracy_by_macs.png", "accuracy_by_latency.png"):
            assert (layout.report_dir / name).stat().st_size > 10_000
        written = layout.cost_path.stat().st_mtime_ns
        assert main(["report", str(layout.root)]) == 0  # again: nothing measured or written
        assert layout.cost_path.stat().st_mtime_ns == written
