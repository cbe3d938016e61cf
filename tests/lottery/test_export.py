"""`scale-lth export`: a finished run's network taken away and loaded back, checked against the
run's own files.

In this process, on lotteries trained here (as tests/lottery/test_shipped_configs.py runs
them): a unit-level LeNet ticket exports compacted, and what ``scale_lth.export.load`` gives
back computes what the masked network does, with as many parameters as the mask keeps weights
plus the biases of the units it keeps (counted here from the mask); a weight-level ticket
exports every masked weight as a CSR matrix holding exactly its kept weights, and loads back
bit for bit; TorchScript and ONNX (run by onnxruntime, at other batch sizes too) compute the
same. In fresh processes (integration): each format of a ResNet-20 channel ticket loads without
the project (TorchScript with torch alone, ONNX with onnxruntime alone) or with
``scale_lth.export.load``, and a tracked ticket's export is logged to its MLflow run as a
PyTorch model that computes the same."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from scale_lth.cli import main
from scale_lth.config import load, load_saved
from scale_lth.data import DataInfo
from scale_lth.driver import check, write_config
from scale_lth.export import load as load_export
from scale_lth.lottery.job import Job
from scale_lth.lottery.network import build_network
from scale_lth.lottery.runner import Runner
from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey
from scale_lth.tracking.logged_models import fluent_store
from scale_lth.tracking.uri import URI_VARIABLE
from scale_lth.training.session import Session
from tests.conftest import CONFIGS
from tests.lottery.test_shipped_configs import shrunk

TICKET = RunKey(0, 1)


def trained(name: str, datasets, folder, *more: str) -> Layout:
    """A lottery of one level of configs/<name>.yaml (no baselines), trained in this process,
    with its config beside the results as the driver writes it."""
    path = CONFIGS / f"{name}.yaml"
    overrides = [*shrunk(path, datasets, folder / "results"), "pruning.levels=1", *more]
    config = load(path, [*overrides, "baselines.branches=[]"]).resolved()
    job = Job([0], range(2), [])
    checked = check(config, job)
    Runner(checked.config, Session(), checked.steps).execute(job)
    write_config(checked.config, checked.info)
    return checked.layout


def masked_network(layout: Layout, key: RunKey):
    """The run's network as trained (pruned weights zero), in eval mode, and its inputs' shape."""
    config = load_saved(layout.config_path)
    info = DataInfo.load(config.data_dir)
    network = build_network(config, info, seed=0)
    network.load_state_dict(torch.load(layout.final_path(key)))
    size = config.data.eval_resolution or config.data.resolution or info.shape[1]
    return network.eval(), (info.channels, size, size)


def images(shape, count: int) -> torch.Tensor:
    return torch.randn(count, *shape, generator=torch.Generator().manual_seed(count))


def export(folder, *arguments: str) -> None:
    assert main(["export", str(folder), *arguments]) == 0


@pytest.fixture(scope="module")
def units(datasets, tmp_path_factory) -> Layout:
    return trained("digits_lenet_units", datasets, tmp_path_factory.mktemp("units"))


def test_a_unit_ticket_exports_compacted_and_loads_back_computing_the_same(units):
    folder = units.run_dir(TICKET)
    export(folder)
    network, shape = masked_network(units, TICKET)
    loaded = load_export(units.export_dir(TICKET) / "model.pt")
    inputs = images(shape, 8)
    with torch.no_grad():
        assert (loaded(inputs) - network(inputs)).abs().max() <= 1e-5
    mask = Mask.load(units.mask_path(TICKET))
    # kept weights, plus a bias for every unit with a kept weight (every class output keeps one)
    units_kept = sum(int(mask[name].any(dim=1).sum()) for name in mask)
    assert sum(p.numel() for p in loaded.parameters()) == mask.num_kept + units_kept
    assert all(p.numel() < q.numel() for p, q in zip(loaded.parameters(), network.parameters(),
                                                    strict=True) if p.dim() == 2)  # fmt: skip
    described = json.loads((units.export_dir(TICKET) / "export.json").read_text())
    assert described["granularity"] == "channel"
    assert described["parameters"] == mask.num_kept + units_kept
    assert described["input"]["shape"] == list(shape)


def test_torchscript_and_onnx_compute_what_the_masked_ticket_does(units):
    import onnxruntime

    folder = units.run_dir(TICKET)
    export(folder, "--format", "torchscript")
    export(folder, "--format", "onnx")
    network, shape = masked_network(units, TICKET)
    scripted = torch.jit.load(str(units.export_dir(TICKET) / "model.torchscript.pt"))
    session = onnxruntime.InferenceSession(str(units.export_dir(TICKET) / "model.onnx"))
    for count in (1, 5):  # the traced example had 2
        inputs = images(shape, count)
        with torch.no_grad():
            expected = network(inputs)
            assert (scripted(inputs) - expected).abs().max() <= 1e-5
        (logits,) = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})
        assert np.abs(logits - expected.numpy()).max() <= 1e-4


def test_a_weight_ticket_exports_its_kept_weights_as_csr_and_loads_back_bit_for_bit(
    datasets, tmp_path
):
    layout = trained("mnist_lenet300", datasets, tmp_path)
    export(layout.run_dir(TICKET))
    saved = torch.load(layout.export_dir(TICKET) / "model.pt", weights_only=True)
    final = torch.load(layout.final_path(TICKET))
    mask = Mask.load(layout.mask_path(TICKET))
    assert set(saved["sparse"]) == set(mask)
    for name, rows in saved["sparse"].items():
        assert rows.layout == torch.sparse_csr
        assert rows._nnz() == int((final[name] != 0).sum()) <= int(mask[name].sum())
    assert Mask.unpacked(saved["mask"]) == mask
    loaded = load_export(layout.export_dir(TICKET) / "model.pt").state_dict()
    assert loaded.keys() == final.keys()
    assert all(torch.equal(loaded[name], final[name]) for name in final)


EXPORTED_OUTPUTS = """
import json, sys, torch
path, inputs = sys.argv[1], torch.load(sys.argv[2])
if path.endswith(".onnx"):
    import onnxruntime
    session = onnxruntime.InferenceSession(path)
    outputs = torch.from_numpy(session.run(None, {"images": inputs.numpy()})[0])
elif path.endswith(".torchscript.pt"):
    outputs = torch.jit.load(path)(inputs)
else:
    from scale_lth.export import load
    outputs = load(path)(inputs)
torch.save(outputs.detach(), sys.argv[3])
stacks = ("scale_lth", "ray", "ffcv", "mlflow")
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in stacks)))
"""


@pytest.mark.integration
def test_each_format_of_a_channel_resnet_loads_in_a_fresh_process(datasets, tmp_path):
    layout = trained("cifar10_resnet20", datasets, tmp_path, "pruning.granularity=channel")
    network, shape = masked_network(layout, TICKET)
    inputs = images(shape, 3)
    torch.save(inputs, tmp_path / "inputs.pt")
    with torch.no_grad():
        expected = network(inputs)
    for form, file in (("state_dict", "model.pt"), ("torchscript", "model.torchscript.pt"),
                       ("onnx", "model.onnx")):  # fmt: skip
        out = tmp_path / form
        export(layout.run_dir(TICKET), "--format", form, "--out", str(out))
        ran = subprocess.run(
            [sys.executable, "-c", EXPORTED_OUTPUTS, str(out / file), str(tmp_path / "inputs.pt"),
             str(tmp_path / "outputs.pt")],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr[-2000:]
        imported = json.loads(ran.stdout.strip().splitlines()[-1])
        if form == "state_dict":  # the loader, without the training stack
            assert not any(name.split(".")[0] in ("ray", "ffcv", "mlflow") for name in imported)
        else:
            assert imported == []  # torch, or onnxruntime, alone
        outputs = torch.load(tmp_path / "outputs.pt")
        assert (outputs - expected).abs().max() <= 1e-4, form


@pytest.mark.integration
def test_a_tracked_tickets_export_is_logged_to_its_mlflow_run(experiment, capsys):
    import mlflow.pytorch

    cwd, layout, config, _ = experiment
    key = RunKey(0, 2)
    before = os.environ.get(URI_VARIABLE)
    export(layout.run_dir(key), "--format", "torchscript")
    # nothing left in the environment that processes started later (a lottery) would track to
    assert os.environ.get(URI_VARIABLE) == before
    printed = capsys.readouterr().out
    uri = next(line.split(" as ")[1].split(" ")[0] for line in printed.splitlines()
               if line.startswith("MLflow: logged"))  # fmt: skip
    with fluent_store(f"sqlite:///{cwd / 'mlflow.db'}"):
        logged = mlflow.pytorch.load_model(uri)
        model = mlflow.get_logged_model(uri.removeprefix("models:/"))
    network, shape = masked_network(layout, key)
    inputs = images(shape, 4)
    with torch.no_grad():
        assert (logged(inputs) - network(inputs)).abs().max() <= 1e-5
    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    run = client.get_run(model.source_run_id)
    assert (run.data.tags["level"], run.data.tags["branch"]) == ("2", "main")
    assert run.data.tags["experiment_hash"] == config.hash
