"""Every file and folder name of an experiment.

Where they live: ``<root>/<name>-<hash>/replicate_<r>/level_<l>/<branch>/``. A run folder holds
``mask.pt`` (bit-packed; absent for the dense level), ``final.pt`` (the trained weights) and
``metrics.json``, written last: a run is finished when it has one. While it trains it keeps
``heartbeat.json`` (its step, and when), and a run whose attempt failed keeps ``failure.json``;
``export/`` holds its network as ``scale-lth export`` writes it.
The trunk's dense level also holds ``init.pt`` (step 0), ``rewind.pt`` (step k) and
``step_<n>.pt`` (the weights at each step the instability analysis or ``rewinding.step: auto``
starts copies from), and, with ``auto``, ``rewind_choice.json`` (the rewind point chosen and
why).

The instability analysis keeps its own runs beside a level's methods, in
``level_<l>/stability/`` (a name kept from before the analysis was renamed, so that earlier
results are found): two copies trained from the same weights under different SGD noise
(``a@<k>``, ``b@<k>``: from step k) and the measurement of the straight path between their
ends (``path@<k>``, whose ``metrics.json`` holds the errors along it). They are runs of the run
graph like the others, but no method: tables and mask analytics never list them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scale_lth.results.runs import INSTABILITY_FOLDER, RunKey
from scale_lth.storage import atomic_write_json, load_json


@dataclass(frozen=True)
class Layout:
    root: Path

    def run_dir(self, key: RunKey) -> Path:
        return self.root / key.run_id

    def mask_path(self, key: RunKey) -> Path:
        return self.run_dir(key) / "mask.pt"

    def final_path(self, key: RunKey) -> Path:
        return self.run_dir(key) / "final.pt"

    def export_dir(self, key: RunKey) -> Path:
        """The finished run's network as ``scale-lth export`` writes it (scale_lth.export)."""
        return self.run_dir(key) / "export"

    def metrics_path(self, key: RunKey) -> Path:
        return self.run_dir(key) / "metrics.json"

    def heartbeat_path(self, key: RunKey) -> Path:
        """Where a training run says how far it is, every ``HEARTBEAT_SECONDS`` or so."""
        return self.run_dir(key) / "heartbeat.json"

    def lock_path(self, key: RunKey) -> Path:
        """Held by the invocation that trains the run: one writer at a time
        (scale_lth.locks)."""
        return self.run_dir(key) / ".lock"

    def failure_path(self, key: RunKey) -> Path:
        """The error a run's last attempt ended with (removed when it starts again)."""
        return self.run_dir(key) / "failure.json"

    def init_path(self, replicate: int) -> Path:
        return self.run_dir(RunKey(replicate, 0)) / "init.pt"

    def rewind_path(self, replicate: int) -> Path:
        return self.run_dir(RunKey(replicate, 0)) / "rewind.pt"

    def point_path(self, replicate: int, step: int) -> Path:
        """The dense run's weights at ``step``, where instability copies start."""
        if step == 0:
            return self.init_path(replicate)
        return self.run_dir(RunKey(replicate, 0)) / f"step_{step}.pt"

    def rewind_choice_path(self, replicate: int) -> Path:
        """``rewinding.step: auto``'s choice for this replicate."""
        return self.run_dir(RunKey(replicate, 0)) / "rewind_choice.json"

    @property
    def config_path(self) -> Path:
        """The resolved config, for people (results are found by hash)."""
        return self.root / "config.yaml"

    @property
    def identity_path(self) -> Path:
        """What the experiment computes, checked against the config on every start."""
        return self.root / "identity.json"

    @property
    def report_dir(self) -> Path:
        """The report: ``report.json`` and its plots."""
        return self.root / "report"

    @property
    def cost_path(self) -> Path:
        """What each finished run's network costs to run (scale_lth.cost writes it, the report
        reads it)."""
        return self.report_dir / "cost.json"

    @property
    def tracking_dir(self) -> Path:
        """Tracking events not yet in the tracking store (see scale_lth.tracking.outbox)."""
        return self.root / "tracking"

    def is_done(self, key: RunKey) -> bool:
        return self.metrics_path(key).is_file()

    def read_metrics(self, key: RunKey) -> dict[str, Any]:
        return load_json(self.metrics_path(key))

    def write_metrics(self, key: RunKey, metrics: dict[str, Any]) -> None:
        atomic_write_json(self.metrics_path(key), metrics)

    def finished(self) -> list[RunKey]:
        """Every finished run of a method (the trunk's and the baselines') under the root, in
        order."""
        return self._holding("metrics.json", "*")

    def finished_instability(self) -> list[RunKey]:
        """Every finished copy and path measurement of the instability analysis, in order."""
        return self._holding("metrics.json", f"{INSTABILITY_FOLDER}/*")

    def every_finished(self) -> list[RunKey]:
        """The methods' finished runs and the instability analysis's."""
        return self.finished() + self.finished_instability()

    def holding(self, name: str) -> list[RunKey]:
        """Every run, of a method or the instability analysis, whose folder holds ``name``."""
        return self._holding(name, "*") + self._holding(name, f"{INSTABILITY_FOLDER}/*")

    def _holding(self, name: str, branches: str) -> list[RunKey]:
        keys = []
        for path in self.root.glob(f"replicate_*/level_*/{branches}/{name}"):
            replicate, level, *branch, _ = path.relative_to(self.root).parts
            keys.append(
                RunKey(
                    int(replicate.removeprefix("replicate_")),
                    int(level.removeprefix("level_")),
                    "/".join(branch),
                )
            )
        return sorted(keys)
