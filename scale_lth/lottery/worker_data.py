"""The data a training worker reads, each loader built once per worker and reused across the
runs it trains (FFCV compiles a pipeline when a loader is built): the evaluation splits in
order, the splits an instability path is evaluated on (each a seeded subsample, see
``path_splits``), and the shuffled training batches of each data order."""

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
        self._path: dict[str, EvalBatches] | None = None

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

    def path_examples(self) -> dict[str, int]:
        """How many examples of each split an instability path is evaluated on."""
        return self.config.instability.examples(self.info.splits)

    def path_splits(self) -> dict[str, EvalBatches]:
        """The splits an instability path is evaluated on, training split first, each the
        seeded subsample of ``path_examples`` (drawn with the experiment's seed: the same for
        every point, both copies and every level); a whole evaluation split is the loader runs
        already evaluate on."""
        if self._path is None:
            counts = self.path_examples()
            self._path = {"train": self._in_order("train", counts["train"])}
            for split, whole in self.evaluation().items():
                cut = counts[split] < self.info.splits[split]
                self._path[split] = self._in_order(split, counts[split]) if cut else whole
        return self._path

    def _in_order(self, split: str, examples: int | None = None) -> EvalBatches:
        return eval_batches(
            self.folder,
            split,
            self.per_worker_batch(),
            rank=self.session.rank,
            world_size=self.session.world_size,
            options=self.loader_options(training=False),
            examples=examples,
            seed=self.config.seed,
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
