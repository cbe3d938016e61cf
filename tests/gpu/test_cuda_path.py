"""The GPU path: masked training under bf16/fp16 autocast and channels-last, DDP over NCCL with
distributed evaluation, the CUDA random state and the loss scaler through a resumed run, a
rewound start on the GPU, and pruning of weights and SNIP scores that live on the GPU.

Deselected where there is no CUDA device (see tests/conftest.py); `make gpu-check` runs them.
"""

import math

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from scale_lth import models
from scale_lth.config import load
from scale_lth.pruning import MaskedParameters, magnitude_prune, snip_prune, snip_scores
from scale_lth.training.evaluation import autocast, evaluate
from scale_lth.training.loop import train_run
from scale_lth.training.optim import build_optimizer
from scale_lth.training.session import Session
from tests.batches import half_mask, plain_steps, random_data

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")
SGD = ["training.optimizer=sgd", "training.lr=0.1", "training.momentum=0.9"]


def conv2(dropout: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(0)
    return models.build("conv2", num_classes=10, in_channels=1, image_size=8, dropout=dropout)


@pytest.fixture
def deterministic():
    """Deterministic cuDNN/cuBLAS kernels, so two runs of the same steps agree bit for bit."""
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False


@pytest.fixture
def full_float32():
    """No TF32 in matrix products and convolutions, so GPU results compare with the CPU's."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_masked_training_on_the_gpu_keeps_pruned_weights_exactly_zero(tmp_path, amp):
    training = load(
        None,
        [
            *SGD,
            "training.weight_decay=0.01",
            "training.duration=50it",
            "training.eval_every=25it",
            f"training.amp={amp}",
            "training.channels_last=true",
        ],
    ).training
    model = conv2()
    mask = half_mask(model)
    start = {n: p.detach().clone().to(CUDA) for n, p in model.named_parameters()}
    data = random_data(device=CUDA)
    steps = plain_steps(training, data)
    result = train_run(
        model, data, training, Session(device=CUDA), **steps, run_dir=tmp_path, mask=mask
    )
    parameters = dict(model.named_parameters())
    assert parameters["features.2.weight"].is_contiguous(memory_format=torch.channels_last)
    for name, keep in mask.items():
        keep = keep.to(CUDA)
        assert parameters[name].is_cuda
        assert torch.count_nonzero(parameters[name][~keep]) == 0, name
        assert not torch.equal(parameters[name][keep], start[name][keep]), name
    assert all(math.isfinite(row["val_loss"]) for row in result.history.rows)


def test_ddp_over_nccl_keeps_pruned_weights_zero_and_evaluates_across_the_group(tmp_path):
    dist.init_process_group(
        "nccl", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        assert dist.get_backend() == "nccl"
        training = load(None, [*SGD, "training.weight_decay=0.01", "training.amp=bf16"]).training
        model = conv2().to(CUDA)
        mask = half_mask(model)
        network = DistributedDataParallel(model, device_ids=[CUDA.index or 0])
        masked = MaskedParameters(network, mask)
        masked.zero_weights()
        optimizer = build_optimizer(model, training)
        data = random_data(device=CUDA)
        for _ in range(10):
            for images, labels in data.train:
                with autocast(CUDA, "bf16"):
                    loss = F.cross_entropy(network(images).float(), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # gradients all-reduced over NCCL
                optimizer.step()
                masked.zero_weights()
        parameters = dict(model.named_parameters())
        for name, keep in mask.items():
            assert torch.count_nonzero(parameters[name][~keep.to(CUDA)]) == 0, name
        validation = data.evaluation["val"]
        across = evaluate(network, validation, CUDA, "bf16", distributed=True)
        assert across == evaluate(network, validation, CUDA, "bf16", distributed=False)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_a_gpu_run_resumed_from_its_checkpoint_ends_bitwise_equal(tmp_path, deterministic, amp):
    """Dropout draws from the CUDA generator and fp16 keeps a loss scale: both must come back."""
    training = load(
        None,
        [
            *SGD,
            "training.duration=30it",
            "training.eval_every=5it",
            f"training.amp={amp}",
            "training.channels_last=true",
        ],
    ).training

    def run(folder, stop_at=None):
        def stop(row):
            if stop_at is not None and row["iteration"] >= stop_at:
                raise KeyboardInterrupt(f"stopped at {row['iteration']}")

        model = conv2(dropout=0.5)
        data = random_data(device=CUDA)
        result = train_run(
            model,
            data,
            training,
            Session(device=CUDA),
            **plain_steps(training, data, checkpoint_every=10),
            run_dir=folder,
            mask=half_mask(model),
            on_eval=stop,
        )
        return model, result

    whole, whole_result = run(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "stopped", stop_at=25)
    resumed, resumed_result = run(tmp_path / "stopped")
    assert resumed_result.resumed_from == 20
    expected = whole.state_dict()
    assert all(torch.equal(t, expected[n]) for n, t in resumed.state_dict().items())
    # the same rows, value for value (NaN train loss of the first row included)
    torch.testing.assert_close(
        resumed_result.history.rows, whole_result.history.rows, rtol=0, atol=0, equal_nan=True
    )


def test_a_rewound_gpu_run_starts_at_the_step_k_weights_times_the_mask(tmp_path):
    training = load(
        None, [*SGD, "training.duration=30it", "training.warmup=20it", "training.amp=bf16"]
    ).training
    model = conv2()
    rewind = {n: t.detach().clone() for n, t in model.state_dict().items()}
    mask = half_mask(model)
    captured = {}

    def capture(network, step):
        captured.update({n: t.detach().cpu() for n, t in network.state_dict().items()})

    data = random_data(device=CUDA)
    train_run(
        model,
        data,
        training,
        Session(device=CUDA),
        **plain_steps(training, data, save_points={10: capture}),
        run_dir=tmp_path,
        mask=mask,
        start_step=10,
    )
    for name, weights in rewind.items():
        expected = weights * mask[name] if name in mask else weights
        assert torch.equal(captured[name], expected), name


def test_weights_on_the_gpu_prune_to_the_same_masks_as_on_the_cpu():
    torch.manual_seed(0)
    model = models.build("resnet18")
    parameters = dict(model.named_parameters())
    weights = {name: parameters[name].detach() for name in models.prunable(model)}
    layout = {4: torch.channels_last}  # as a channels-last GPU run holds its conv weights
    on_gpu = {
        name: w.to(CUDA, memory_format=layout.get(w.dim(), torch.preserve_format))
        for name, w in weights.items()
    }
    cpu_mask = gpu_mask = None
    for _ in range(3):
        cpu_mask = magnitude_prune(weights, 0.2, cpu_mask)
        gpu_mask = magnitude_prune(on_gpu, 0.2, gpu_mask)
        assert gpu_mask == cpu_mask


def test_snip_on_the_gpu_matches_the_cpu_scores_and_keeps_the_exact_count(full_float32):
    generator = torch.Generator().manual_seed(1)
    inputs = [torch.randn(16, 1, 8, 8, generator=generator) for _ in range(2)]
    targets = [torch.randint(0, 10, (16,), generator=generator) for _ in range(2)]
    cpu_scores = snip_scores(conv2(), inputs, targets)
    network = conv2().to(CUDA)
    gpu_inputs, gpu_targets = [x.to(CUDA) for x in inputs], [y.to(CUDA) for y in targets]
    gpu_scores = snip_scores(network, gpu_inputs, gpu_targets)
    for name, score in cpu_scores.items():
        torch.testing.assert_close(gpu_scores[name], score, rtol=1e-4, atol=1e-10)
    mask = snip_prune(network, gpu_inputs, gpu_targets, density=0.1)
    assert mask.num_kept == round(0.1 * mask.num_total)


def test_the_snip_baseline_scores_and_trains_inside_a_level_on_the_gpu(smoke_config):
    from tests.lottery.test_snip_branch import run_a_level_with_snip

    run_a_level_with_snip(smoke_config("training.duration=20it"), CUDA)
