"""The experiment schema: one frozen dataclass per config section, a help string per field.

Fields marked ``hashed=False`` say where, how or how far an experiment runs, not what it
computes; they never change the experiment's hash (and so its output folder). The fields of
``baselines`` that the method registry (scale_lth.methods) lists as a method's own settings
name that method's runs, never the experiment (see scale_lth.config.hashing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scale_lth import methods
from scale_lth.config.duration import Duration
from scale_lth.config.hashing import experiment_hash, flatten, method_hash

Rule = tuple[Callable[[Any], bool], Callable[[], str]]  # a test of a value, what it asks for


def at_least(low: int) -> Rule:
    return (lambda value: value >= low, lambda: f">= {low}")


def absolute_folder() -> Rule:
    """Empty, or a path from the root (it may start with an environment variable)."""
    return (
        lambda value: value == "" or value.startswith(("/", "$")),
        lambda: "an absolute path (e.g. $SLURM_TMPDIR/data) or empty",
    )


def interval(low: float, high: float, closed_low: bool = False, closed_high: bool = False) -> Rule:
    """Values from ``low`` to ``high``, each end in or out, written as in mathematics."""

    def test(value: float) -> bool:
        above = value >= low if closed_low else value > low
        below = value <= high if closed_high else value < high
        return above and below

    if high == float("inf"):
        return (test, lambda: f"{'>=' if closed_low else '>'} {low}")
    return (
        test,
        lambda: f"in {'[' if closed_low else '('}{low}, {high}{']' if closed_high else ')'}",
    )


def known_baseline() -> Rule:
    """A baseline of the method registry (read when a config is validated)."""
    return (
        lambda value: value in methods.baselines(),
        lambda: "one of " + ", ".join(repr(name) for name in methods.baselines()),
    )


def option(default, help: str, hashed: bool = True, valid: Rule | None = None, identity: str = ""):
    """A config field with its help text; ``valid`` is a rule every value must meet (a value
    in a list or mapping, each one); ``identity``, the name the field is hashed under where it
    is not its own (a renamed field); mutable defaults are copied per instance."""
    metadata = {"help": help, "hashed": hashed, "valid": valid, "identity": identity}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


Dataset = Literal["digits", "mnist", "cifar10", "imagenet", "synthetic"]


@dataclass(frozen=True)
class DataConfig:
    dataset: Dataset = option("digits", "which data set the .beton files hold")
    path: str = option(
        "", "folder with train/val(/test).beton; empty: <data_root>/<dataset>", hashed=False
    )
    batch_size: int = option(
        60, "global minibatch size, split evenly over the workers", valid=at_least(1)
    )
    resolution: int | None = option(None, "training image side for ImageNet crops; none: 224")
    eval_resolution: int | None = option(None, "evaluation center-crop side; none: 224")
    loader_workers: int = option(
        2, "FFCV decoding threads per training worker", hashed=False, valid=at_least(1)
    )
    os_cache: bool = option(True, "map the .beton into the shared page cache", hashed=False)
    stage: str = option(
        "",
        "node-local folder (e.g. $SLURM_TMPDIR/data) each node copies the .beton files into "
        "once and reads from; empty: read data.path",
        hashed=False,
        valid=absolute_folder(),
    )


@dataclass(frozen=True)
class ModelConfig:
    name: str = option("lenet300", "registry name: see `scale_lth.models.names()`")
    num_classes: int | None = option(
        None, "output classes; none: taken from the data", valid=at_least(1)
    )
    dropout: float = option(
        0.0, "dropout after hidden FC layers (conv2/4/6)", valid=interval(0, 1, closed_low=True)
    )


@dataclass(frozen=True)
class TrainingConfig:
    optimizer: Literal["sgd", "adam"] = option("sgd", "optimizer")
    lr: float = option(0.1, "peak learning rate", valid=interval(0, float("inf")))
    momentum: float = option(0.0, "SGD momentum", valid=interval(0, 1, closed_low=True))
    nesterov: bool = option(False, "Nesterov momentum (SGD)")
    weight_decay: float = option(0.0, "L2 weight decay", valid=at_least(0))
    duration: Duration = option(Duration.parse("40ep"), "training length per run")
    lr_schedule: Literal["constant", "step", "linear"] = option(
        "constant",
        "constant; step (x gamma at each milestone); linear (ffcv-imagenet: warm up, then "
        "down to 0 at the end)",
    )
    milestones: list[Duration] = option([], "step schedule: where the rate is multiplied by gamma")
    gamma: float = option(0.1, "step schedule factor", valid=interval(0, 1, closed_high=True))
    warmup: Duration = option(Duration.parse("0it"), "linear warmup from 0 to lr")
    label_smoothing: float = option(
        0.0, "cross-entropy label smoothing", valid=interval(0, 1, closed_low=True)
    )
    eval_every: Duration = option(Duration.parse("100it"), "evaluate every this many steps")
    checkpoint_every: Duration = option(
        Duration.parse("1ep"), "how often a resumable checkpoint is saved", hashed=False
    )
    amp: Literal["none", "bf16", "fp16"] = option("none", "autocast precision")
    channels_last: bool = option(False, "channels-last memory format", hashed=False)


@dataclass(frozen=True)
class PruningConfig:
    method: Literal["iterative", "oneshot"] = option(
        "iterative",
        "iterative: level l prunes level l-1's trained weights; oneshot: level l prunes the "
        "dense network's trained weights straight to (1-p)^l (levels independent)",
    )
    granularity: Literal["weight", "channel"] = option(
        "weight",
        "weight: single weights; channel: whole output channels of convolutions and units of "
        "linear layers, those tied by a residual addition together, never the classifier's "
        "outputs",
    )
    channel_score: Literal["l1", "bn_gamma"] = option(
        "l1",
        "what ranks channels at granularity channel: l1: the mean |weight| of the channel's "
        "rows; bn_gamma: the mean |gamma| of its BatchNorm layers (network slimming)",
    )
    scope: Literal["global", "layer"] = option(
        "global", "rank globally or within each layer (at granularity channel: each group)"
    )
    fraction: float = option(
        0.2, "fraction of the remaining weights removed per level", valid=interval(0, 1)
    )
    layer_fractions: dict[str, float] = option(
        {},
        "per-layer rates: parameter-name pattern (fnmatch) -> fraction; first match wins (at "
        "granularity channel: a group's rate, matched against the weights writing it)",
        valid=interval(0, 1),
    )
    output_fraction: float | None = option(
        None,
        "rate for the output layer; none: as the rest (granularity weight only: channel pruning "
        "never removes the classes)",
        valid=interval(0, 1),
    )
    ignore: list[str] = option([], "parameter-name patterns never pruned (on top of the model's)")
    levels: int = option(
        20,
        "pruning levels after the dense level 0 (raising it trains only the new ones)",
        hashed=False,
        valid=at_least(0),
    )


@dataclass(frozen=True)
class RewindingConfig:
    step: Duration | Literal["auto"] = option(
        Duration.parse("0it"),
        "rewind point k (0it: original LTH); auto: the earliest of rewinding.candidates where "
        "the dense network is stable (instability below instability.threshold)",
    )
    candidates: list[Duration] = option(
        [], "rewind points rewinding.step: auto chooses from (the dense run saves each)"
    )
    mode: Literal["weights", "lr", "finetune"] = option(
        "weights",
        "weights: rewind survivors to step k; lr: keep the trained weights and replay the "
        "learning rates from step k; finetune: keep them and train T-k steps at the final rate",
    )


@dataclass(frozen=True)
class InstabilityConfig:
    points: int = option(
        30, "points on the straight path between two copies, endpoints included", valid=at_least(2)
    )
    threshold: float = option(
        0.02,
        "instability (error barrier) under which a network counts as stable to SGD noise",
        valid=interval(0, 1),
    )
    steps: list[Duration] = option(
        [],
        "steps where the dense run saves its weights for `scale-lth instability` (its --steps)",
        hashed=False,
    )
    train_examples: int | None = option(
        55_000,
        "training examples a path is evaluated on: a seeded subsample (the same for every point, "
        "copy and level), or every example if the split is no larger; none: every example. "
        "55,000 keeps MNIST's and CIFAR-10's whole split and an ImageNet path under 2% of a "
        "90-epoch run's images",
        valid=at_least(1),
    )
    eval_examples: int | None = option(
        10_000,
        "examples of each evaluation split (val, test) a path is evaluated on, subsampled as "
        "train_examples; none: every example",
        valid=at_least(1),
    )

    def examples(self, splits: dict[str, int]) -> dict[str, int]:
        """How many examples of each split (name -> size) a path is evaluated on:
        ``train_examples`` of the training split, ``eval_examples`` of the others, the whole
        split where it is no larger."""
        limits = {"train": self.train_examples}
        return {
            split: min(size, limits.get(split, self.eval_examples) or size)
            for split, size in splits.items()
        }


@dataclass(frozen=True)
class BaselinesConfig:
    branches: list[str] = option(
        [],
        "baselines trained at every level's density (adding one keeps the trunk)",
        hashed=False,
        valid=known_baseline(),
    )
    snip_batches: int = option(1, "minibatches SNIP scores are summed over", valid=at_least(1))
    scratch_b_max_factor: float = option(
        2.0,
        "Scratch-B trains up to this many times the steps (dense over sparse FLOPs, capped)",
        valid=interval(1, float("inf"), closed_low=True),
    )


@dataclass(frozen=True)
class ScalingConfig:
    num_workers: int = option(
        2, "Ray Train workers (one per GPU on a cluster)", hashed=False, valid=at_least(1)
    )
    parallelism: Literal["ddp", "runs"] = option(
        "ddp",
        "ddp: the workers of a group train each run together; runs: each worker trains whole "
        "runs alone (networks too small for DDP to pay)",
        hashed=False,
    )
    concurrent_runs: int = option(
        0,
        "ddp worker groups training runs at once; 0: as many as the Ray cluster can place",
        hashed=False,
        valid=at_least(0),
    )
    use_gpu: bool = option(
        False, "GPUs for the workers (scaling.gpus_per_worker each), NCCL", hashed=False
    )
    gpus_per_worker: float = option(
        1.0,
        "the share of a GPU each worker reserves (scaling.use_gpu): 0.25 packs four workers "
        "on a GPU, for networks too small to fill one (parallelism: runs, or ddp groups of "
        "one worker)",
        hashed=False,
        valid=interval(0, 1, closed_high=True),
    )
    cpus_per_worker: int = option(1, "CPUs reserved per worker", hashed=False, valid=at_least(1))
    placement: Literal["pack", "spread"] = option(
        "pack",
        "where Ray puts a group's workers: pack: on as few nodes as hold them; spread: on as "
        "many nodes as it can (one rank per node where the cluster has room)",
        hashed=False,
    )
    address: str = option("", "Ray address; empty: RAY_ADDRESS or a local Ray", hashed=False)
    max_failures: int = option(
        2,
        "times Ray Train restarts lost workers or nodes, and tries again to start a group the "
        "cluster has no room for (each try waits 60 s for room: "
        "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S)",
        hashed=False,
        valid=at_least(0),
    )


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool = option(True, "log to MLflow", hashed=False)
    uri: str = option(
        "", "MLflow tracking URI; empty: MLFLOW_TRACKING_URI or ./mlflow.db", hashed=False
    )
    experiment: str = option("", "MLflow experiment name; empty: the config's name", hashed=False)
    system_metrics: bool | None = option(
        None,
        "MLflow system metrics on each run (CPU, memory, GPU utilisation and memory); none: "
        "where runs use GPUs",
        hashed=False,
    )
    fallback_uri: str = option(
        "",
        "store used when tracking.uri does not answer at the start (e.g. sqlite:///mlflow.db); "
        "empty: refuse to start",
        hashed=False,
    )


@dataclass(frozen=True)
class LauncherConfig:
    cluster: Literal["slurm", "local", "debug"] = option("slurm", "submitit executor", hashed=False)
    partition: str = option("", "SLURM partition", hashed=False)
    account: str = option("", "SLURM account", hashed=False)
    qos: str = option("", "SLURM QoS", hashed=False)
    constraint: str = option("", "SLURM node constraint", hashed=False)
    nodes: int = option(1, "nodes per job", hashed=False, valid=at_least(1))
    gpus_per_node: int = option(0, "GPUs per node", hashed=False)
    cpus_per_task: int = option(2, "CPUs per task", hashed=False)
    mem_gb: int = option(0, "memory per node in GB; 0: the partition default", hashed=False)
    timeout_min: int = option(60, "time limit per job in minutes", hashed=False)
    log_dir: str = option("slurm_logs", "submitit log folder", hashed=False)


@dataclass(frozen=True)
class Config:
    name: str = option("", "experiment name; empty: the config file's stem", hashed=False)
    seed: int = option(0, "base seed; replicate r uses seed + r")
    replicates: int = option(1, "independent replicates", hashed=False, valid=at_least(1))
    output_root: str = option("results", "where experiment folders go", hashed=False)
    data_root: str = option("data", "where data folders go", hashed=False)
    data: DataConfig = option(DataConfig(), "data and loaders")
    model: ModelConfig = option(ModelConfig(), "network")
    training: TrainingConfig = option(TrainingConfig(), "optimisation")
    pruning: PruningConfig = option(PruningConfig(), "iterative magnitude pruning")
    rewinding: RewindingConfig = option(RewindingConfig(), "late resetting")
    instability: InstabilityConfig = option(
        InstabilityConfig(),
        "instability analysis (linear mode connectivity)",
        identity="stability",  # its name when experiments were first hashed: they keep folders
    )
    baselines: BaselinesConfig = option(BaselinesConfig(), "comparisons at each level")
    scaling: ScalingConfig = option(ScalingConfig(), "Ray Train workers")
    tracking: TrackingConfig = option(TrackingConfig(), "MLflow")
    launcher: LauncherConfig = option(LauncherConfig(), "SLURM via submitit")

    @property
    def hash(self) -> str:
        """The experiment's stable identity (see scale_lth.config.hashing)."""
        return experiment_hash(self)

    def run_branch(self, method: str) -> str:
        """The name of ``method``'s runs: the method, plus a hash of its own settings where
        they differ from the defaults (``snip``, ``snip-3f9a0c``)."""
        return methods.branch(method, method_hash(self, method))

    @property
    def experiment_dir(self) -> Path:
        """``<output_root>/<name>-<hash>``: where every result of this experiment goes."""
        return Path(self.output_root) / f"{self.name}-{self.hash}"

    @property
    def data_dir(self) -> Path:
        """The folder holding the .beton files."""
        return Path(self.data.path) if self.data.path else Path(self.data_root) / self.data.dataset

    def flat(self) -> dict[str, Any]:
        """Every value as ``section.key -> value``."""
        return flatten(self)

    def resolved(self) -> Config:
        """Paths resolved against this process's working folder, as every worker and node
        must see them."""
        data = self.data
        if data.path:
            data = dataclasses.replace(data, path=str(Path(data.path).resolve()))
        return dataclasses.replace(
            self,
            output_root=str(Path(self.output_root).resolve()),
            data_root=str(Path(self.data_root).resolve()),
            data=data,
        )
