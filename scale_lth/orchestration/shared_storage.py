"""Every node of a Ray cluster sees the experiment's folders as the driver does.

A results folder or data folder that is node-local (a path that exists on every machine, but is
each machine's own disk) would split one experiment into halves that never see each other: each
node training runs the others redo, checkpoints resumed from nowhere, a report of half the runs.
So before any run starts, the driver writes a probe file of fresh random content into
``output_root`` and describes the data folder (the bytes of its ``info.json``, the size of each
``.beton``); a task pinned to every other node of the cluster reads the probe and describes the
data folder as it sees it. A node that sees otherwise ends the command in one line naming the
node, the setting and the path. Data that each node holds a copy of at the same path passes:
it is the same data.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from scale_lth.config import Config
from scale_lth.errors import UserError

PROBE_PREFIX = ".storage-probe-"
ANSWER_SECONDS = 120  # a node's task starts a Ray worker process first


@dataclass(frozen=True)
class View:
    """What one machine sees: the probe file's content (None: no such file) and, for each file
    of the data folder that matters, its size or digest (None: no such file)."""

    probe: str | None
    data: dict[str, str | None]


def data_view(folder: Path) -> dict[str, str | None]:
    """``info.json``'s SHA-256 and every ``.beton``'s size, by file name."""
    folder = Path(folder)
    seen: dict[str, str | None] = {}
    info = folder / "info.json"
    seen[info.name] = hashlib.sha256(info.read_bytes()).hexdigest() if info.is_file() else None
    for beton in sorted(folder.glob("*.beton")):
        seen[beton.name] = str(beton.stat().st_size)
    return seen


def look(probe: str, data_folder: str) -> View:
    """What this machine sees of the probe file and the data folder (runs on each node)."""
    path = Path(probe)
    return View(path.read_text() if path.is_file() else None, data_view(Path(data_folder)))


def difference(config: Config, expected: View, seen: View) -> str | None:
    """What a node sees otherwise than the driver, as the middle of a line; None: the same."""
    if seen.probe != expected.probe:
        return (
            f"does not see the results folder output_root {Path(config.output_root).resolve()} "
            "the driver writes (a probe file written there is not there)"
        )
    changed = sorted(name for name in expected.data if seen.data.get(name) != expected.data[name])
    if changed:
        return (
            f"sees other data in data.path {config.data_dir.resolve()} than the driver "
            f"({', '.join(changed)} missing or different)"
        )
    return None


def check_shared_storage(config: Config) -> None:
    """Every alive node of the connected Ray cluster but the driver's own sees ``output_root``
    and the data folder as the driver does; else a UserError naming the node and the path."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    own = ray.get_runtime_context().get_node_id()
    others = [node for node in ray.nodes() if node["Alive"] and node["NodeID"] != own]
    if not others:
        return
    root = Path(config.output_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    probe = root / f"{PROBE_PREFIX}{secrets.token_hex(8)}"
    probe.write_text(secrets.token_hex(16))
    data = str(config.data_dir.resolve())
    try:
        expected = look(str(probe), data)
        task = ray.remote(num_cpus=0, max_retries=0)(look)
        answers = [
            task.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            ).remote(str(probe), data)
            for node in others
        ]
        ready, _ = ray.wait(answers, num_returns=len(answers), timeout=ANSWER_SECONDS)
        for node, answer in zip(others, answers, strict=True):
            name = f"node {node['NodeManagerHostname']} ({node['NodeManagerAddress']})"
            if answer not in ready:
                raise UserError(
                    f"{name} did not answer within {ANSWER_SECONDS} s whether it sees "
                    f"output_root and data.path: check that node, or remove it from the cluster"
                )
            problem = difference(config, expected, ray.get(answer))
            if problem:
                raise UserError(
                    f"{name} {problem}: put output_root and data.path on storage every node "
                    "mounts at the same path (data may also be copied to each node)"
                )
    finally:
        probe.unlink(missing_ok=True)
