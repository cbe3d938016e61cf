"""What a run's network costs, against hand counts: a weight ticket of LeNet-300-100 on the 8x8
digits does one multiply-accumulate per kept weight, a channel ticket of Conv-2 those of its
compacted convolutions and layers; weight runs share the dense network's latency, and a
second measurement loads and times nothing; a missing data folder skips the cost with a line;
the report's rows, cost table and plot lines carry the numbers of ``cost.json``."""

import itertools
import json
import os

import pytest
import torch
import yaml
from torch import nn

import scale_lth.cost as cost
from scale_lth.config import Config, load
from scale_lth.lottery.network import build_network
from scale_lth.pruning import Mask
from scale_lth.pruning.channel_groups import channel_groups
from scale_lth.pruning.channels import channel_mask
from scale_lth.report.cost import MACS, format_costs, read_costs, with_costs
from scale_lth.report.plots import lines
from scale_lth.report.table import collect
from scale_lth.results import Layout, RunKey
from tests.conftest import CONFIGS

DENSE, TICKET = RunKey(0, 0), RunKey(0, 1)


def experiment(tmp_path, *overrides: str) -> tuple[Layout, Config]:
    """An experiment folder holding its config as the driver writes it; the digits are not
    written (their description comes from scikit-learn)."""
    config = load(
        CONFIGS / "smoke.yaml",
        [f"data.path={tmp_path / 'digits'}", f"output_root={tmp_path / 'results'}", *overrides],
    ).resolved()
    layout = Layout(config.experiment_dir)
    layout.root.mkdir(parents=True)
    layout.config_path.write_text(yaml.safe_dump(config.flat(), sort_keys=False))
    return layout, config


def finish(layout: Layout, key: RunKey, network, keep: Mask | None) -> None:
    """The run's files: its weights, its mask and the metrics that mark it finished."""
    layout.run_dir(key).mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), layout.final_path(key))
    if keep is not None:
        keep.save(layout.mask_path(key))
    layout.write_metrics(key, {"final_accuracy": 0.5})


def first(count: int, shape) -> torch.Tensor:
    """A mask tensor keeping its first ``count`` entries."""
    flags = torch.zeros(shape, dtype=torch.bool).flatten()
    flags[:count] = True
    return flags.reshape(shape)


def lenet_runs(tmp_path) -> tuple[Layout, Config]:
    """LeNet-300-100 on the digits (64-300-100-10): the dense level and a weight ticket keeping
    1000, 500 and 200 of its layers' weights."""
    layout, config = experiment(tmp_path)
    network = build_network(config, _digits(config), seed=0)
    finish(layout, DENSE, network, None)
    shapes = {name: p.shape for name, p in network.named_parameters() if name.endswith("weight")}
    kept = {"hidden.0.weight": 1000, "hidden.1.weight": 500, "output.weight": 200}
    finish(layout, TICKET, network, Mask({n: first(k, shapes[n]) for n, k in kept.items()}))
    return layout, config


def _digits(config):
    from scale_lth.data import planned_info

    return planned_info(config.data_dir, config.data.dataset)


@pytest.fixture
def timed(monkeypatch) -> list[int]:
    """Every latency measurement replaced by one that counts itself and says 1 ms per input."""
    calls: list[int] = []

    def latency_ms(network, inputs):
        calls.append(len(inputs))
        return float(len(inputs))

    monkeypatch.setattr(cost, "latency_ms", latency_ms)
    return calls


def recorded(layout: Layout) -> dict:
    return json.loads(layout.cost_path.read_text())


def test_a_weight_tickets_macs_are_one_per_kept_weight(tmp_path, timed):
    layout, _ = lenet_runs(tmp_path)
    cost.write_costs(layout)
    runs = recorded(layout)["runs"]
    # every linear weight is used once per example: the dense 64x300 + 300x100 + 100x10
    assert runs[DENSE.run_id]["macs"] == 64 * 300 + 300 * 100 + 100 * 10 == 50_200
    assert runs[DENSE.run_id]["parameters"] == 50_200 + 300 + 100 + 10
    assert runs[TICKET.run_id]["macs"] == 1000 + 500 + 200
    assert runs[TICKET.run_id]["parameters"] == 1000 + 500 + 200 + 300 + 100 + 10  # and biases
    # the dense-shaped network runs the ticket: one latency, measured once per batch size
    assert runs[TICKET.run_id]["latency_ms"] == runs[DENSE.run_id]["latency_ms"]
    assert runs[TICKET.run_id]["latency_ms"] == {"64": 64.0, "1": 1.0}
    assert sorted(timed) == [1, 64]


def test_a_channel_tickets_macs_are_those_of_its_compacted_layers(tmp_path, timed):
    layout, config = experiment(tmp_path, "model.name=conv2", "pruning.granularity=channel")
    network = build_network(config, _digits(config), seed=0)
    # Conv-2 on 1x8x8 digits: conv 3x3 1->64, conv 3x3 64->64 (8x8, padded), pool to 4x4,
    # linear 64*16->256->256->10; the ticket keeps 10 and 20 channels, 100 and 50 units
    keep = {"features.0.weight": 10, "features.2.weight": 20,
            "classifier.hidden.0.weight": 100, "classifier.hidden.1.weight": 50}  # fmt: skip
    groups = channel_groups(network)
    kept = [first(keep[group.producers[0].weight], (group.channels,)) for group in groups]
    shapes = {name: p.shape for name, p in network.named_parameters()}
    finish(layout, TICKET, network, channel_mask(shapes, groups, kept))
    cost.write_costs(layout)
    run = recorded(layout)["runs"][TICKET.run_id]
    weights = {
        "conv 1": (1 * 10 * 9, 8 * 8),  # (weights, uses per example)
        "conv 2": (10 * 20 * 9, 8 * 8),
        "linear 1": (20 * 16 * 100, 1),
        "linear 2": (100 * 50, 1),
        "output": (50 * 10, 1),
    }
    assert run["macs"] == sum(count * uses for count, uses in weights.values()) == 158_460
    biases = 10 + 20 + 100 + 50 + 10
    assert run["parameters"] == sum(count for count, _ in weights.values()) + biases


def test_costs_are_measured_once_and_again_only_for_what_changed(tmp_path, timed, monkeypatch):
    layout, _ = lenet_runs(tmp_path)
    loads = []

    def ticket(layout, key, experiment):
        loads.append(key)
        return loaded(layout, key, experiment)

    loaded = cost.ticket
    monkeypatch.setattr(cost, "ticket", ticket)
    cost.write_costs(layout)
    assert (sorted(loads), sorted(timed)) == ([DENSE, TICKET], [1, 64])
    written = layout.cost_path.stat().st_mtime_ns
    loads.clear()
    timed.clear()
    cost.write_costs(layout)  # the report again: nothing loaded, nothing timed, nothing written
    assert (loads, timed) == ([], [])
    assert layout.cost_path.stat().st_mtime_ns == written
    final = layout.final_path(TICKET)
    torch.save(torch.load(final), final)  # the run trained again (a later modification time)
    stat = final.stat()
    os.utime(final, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    cost.write_costs(layout)
    assert (loads, timed) == ([TICKET], [])  # loaded again; its shape's latency is known
    loads.clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)  # other conditions: every shape timed again
    try:
        cost.write_costs(layout)
    finally:
        torch.set_num_threads(threads)
    assert (len(loads), sorted(timed)) == (1, [1, 64])  # one load serves both runs' shape
    assert recorded(layout)["latency"]["threads"] == threads + 1


def test_latency_is_the_median_timed_pass_after_the_warmup_without_gradients(monkeypatch):
    class Passes(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gradients: list[bool] = []

        def forward(self, inputs):
            self.gradients.append(torch.is_grad_enabled())
            return inputs

    seconds = [0.005, 0.001, 0.003, 0.1, 0.002, 0.004, 0.006]  # the timed passes', in order
    clock = itertools.accumulate(t for each in seconds for t in (0.0, each))  # start, end
    monkeypatch.setattr(cost, "perf_counter", lambda: next(clock))
    network = Passes()
    assert cost.latency_ms(network, torch.zeros(3, 1)) == pytest.approx(4.0)
    assert network.gradients == [False] * (cost.WARMUP + cost.REPETITIONS)
    assert len(seconds) == cost.REPETITIONS


def test_a_missing_data_folder_skips_the_cost_with_one_line(tmp_path, capsys, timed):
    layout, config = experiment(tmp_path, "data.dataset=mnist")
    layout.write_metrics(DENSE, {"final_accuracy": 0.5})  # finished; its data never written
    torch.save({}, layout.final_path(DENSE))
    cost.write_costs(layout)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1 and printed[0].startswith("Cost not measured")
    assert str(config.data_dir) in printed[0]
    assert not layout.cost_path.exists() and timed == []


def test_the_reports_rows_table_and_plot_lines_carry_cost_json(tmp_path):
    layout = Layout(tmp_path)
    density = {0: 1.0, 1: 0.5}
    accuracy = {(0, "main"): 0.9, (1, "main"): 0.8, (1, "reinit"): 0.7}
    macs = {(0, "main"): [1000, 1000], (1, "main"): [400, 600], (1, "reinit"): [300, 500]}
    latency = {(0, "main"): [4.0, 6.0], (1, "main"): [2.0, 2.0], (1, "reinit"): [1.0, 3.0]}
    runs = {}
    for (level, branch), values in macs.items():
        for replicate in (0, 1):
            key = RunKey(replicate, level, branch)
            layout.write_metrics(
                key,
                {
                    "final_accuracy": accuracy[(level, branch)],
                    "density": density[level],
                    "early_stop_iteration": 10,
                    "early_stop_accuracy": 0.5,
                    "accuracy_split": "test",
                },
            )
            runs[key.run_id] = {
                "level": level,
                "branch": branch,
                "macs": values[replicate],
                "parameters": 2 * values[replicate],
                "latency_ms": {"64": latency[(level, branch)][replicate], "1": 0.1},
            }
    conditions = {
        "device": "cpu",
        "processor": "a CPU",
        "threads": 3,
        "batches": [64, 1],
        "warmup": 2,
        "repetitions": 7,
        "statistic": "median",
    }
    layout.cost_path.parent.mkdir()
    layout.cost_path.write_text(json.dumps({"latency": conditions, "runs": runs}))
    costs = read_costs(layout)
    rows = with_costs(collect(layout), costs)
    by_cell = {(row.level, row.branch): row for row in rows}
    assert by_cell[(1, "main")].macs == 500 and by_cell[(1, "main")].parameters == 1000
    assert by_cell[(1, "reinit")].latency_ms == 2.0  # the mean of the batch of 64's
    # each line starts at the dense network and goes down the levels, at cost.json's means
    drawn = {line.label: line for line in lines(rows, "accuracy_mean", "accuracy_std", MACS)}
    assert [(line.x, line.y) for line in drawn.values()] == [
        ([1000, 500], [90.0, 80.0]),
        ([1000, 400], [90.0, 70.0]),
    ]
    by_latency = lines(rows, "accuracy_mean", None, costs.latency_axis)
    assert [line.x for line in by_latency] == [[5.0, 2.0], [5.0, 2.0]]
    assert "torch threads: 3" in costs.latency_axis.label
    assert "batch of 64" in costs.latency_axis.label
    table = format_costs(rows, costs).splitlines()
    assert table[2].split() == ["0", "100.000%", "1k", "MACs", "5", "ms"]
    assert table[3].split() == ["1", "50.000%", "500", "MACs", "2", "ms", "400", "MACs", "2", "ms"]
    assert "a CPU, torch threads: 3" in table[-1]
