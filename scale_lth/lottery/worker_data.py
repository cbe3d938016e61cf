"""The data a training worker reads, each loader built once per worker and reused across the
runs it trains (FFCV compiles a pipeline when a loader is built): the evaluation splits in
order, the training split in order (the instability analysis evaluates on it), and the shuffled
training batches of each data order."""

from __future__ import annotations

from pathlib import Path

from scale_lth.config import Config
from scale_lth.data import DataInfo, LoaderOptions, eval_batches, train_batches
from scale_lth.lottery.starts import Minibatches
from scale_lth.training.evaluation import EvalBatches
from scale_lth.training.loop import RunData, TrainBatches
from scale_lth.training.session import Session


class WorkerData:
    def __init__(self, config: Config, folder: Path, info: DataInfo, session: Session) -> None:
        self.config = config
        self.folder = folder  # data.path, or its copy on this node
        self.info = info
        self.session = session
        self._train: dict[int, TrainBatches] = {}
        self._evaluation: dict[str, EvalBatches] | None = None
        self._training_in_order: EvalBatches | None = None

    def loader_options(self, training: bool) -> LoaderOptions:
        data = self.config.data
        return LoaderOptions(
            device=self.session.device,
            threads=min(data.loader_workers, self.config.scaling.cpus_per_worker),
            resolution=data.resolution if training else data.eval_resolution,
            channels_last=self.config.training.channels_last,
            os_cache=data.os_cache,
        )

    def per_worker_batch(self) -> int:
        return max(1, self.config.data.batch_size // self.session.world_size)

    def evaluation(self) -> dict[str, EvalBatches]:
        """The evaluation splits (val, and test where the data has one), in order."""
        if self._evaluation is None:
            self._evaluation = {
                split: self._in_order(split)
                for split in ("val", "test")
                if split in self.info.splits
            }
        return self._evaluation

    def training_in_order(self) -> EvalBatches:
        """The training split in order, for evaluation (the instability analysis)."""
        if self._training_in_order is None:
            self._training_in_order = self._in_order("train")
        return self._training_in_order

    def _in_order(self, split: str) -> EvalBatches:
        return eval_batches(
            self.folder,
            split,
            self.per_worker_batch(),
            rank=self.session.rank,
            world_size=self.session.world_size,
            options=self.loader_options(training=False),
        )

    def for_run(self, seed: int, keep: bool) -> RunData:
        """The training batches in the data order of ``seed`` (kept for later runs with
        ``keep``: a replicate's order is shared by its runs, an instability copy's is its own)
        and the evaluation splits."""
        train = self._train.get(seed)
        if train is None:
            train = train_batches(
                self.folder,
                self.per_worker_batch(),
                seed=seed,
                distributed=self.session.world_size > 1,
                options=self.loader_options(training=True),
            )
            if keep:
                self._train[seed] = train
        return RunData(train, self.evaluation())

    def first_minibatches(self, seed: int, count: int) -> Minibatches:
        """The first ``count`` training minibatches of epoch 0 in the order of ``seed``."""
        train = self.for_run(seed, keep=True).train
        train.epoch = 0
        inputs, targets = [], []
        for images, labels in train:
            inputs.append(images)
            targets.append(labels)
            if len(inputs) == count:
                break
        return inputs, targets
