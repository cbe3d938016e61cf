"""The bad-input catalogue of docs/errors.md, one test per row: each kind is refused on the
driver before Ray starts or any file is written, in one line naming the problem and the fix,
with exit code 2, and the line is the one the docs show."""

import dataclasses
import errno
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scale_lth.cli import main
from scale_lth.config import load
from scale_lth.data import ensure_written
from scale_lth.orchestration.ray_cluster import free_port
from scale_lth.preflight import write_identity
from scale_lth.pruning import Mask
from scale_lth.results import Layout, RunKey
from scale_lth.tracking.uri import PASSWORD, USERNAME
from tests.conftest import CONFIGS, ROOT

SMOKE = str(CONFIGS / "smoke.yaml")
ERRORS_DOC = ROOT / "docs" / "errors.md"
PREFIX = "scale-lth: error: "


def documented() -> dict[str, str]:
    """docs/errors.md's rows: kind -> message, ``<...>`` standing for the varying parts."""
    rows = {}
    for line in ERRORS_DOC.read_text().splitlines():
        match = re.match(r"^\| `([a-z-]+)` \| ``(.+)`` \|", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def matches(template: str, message: str) -> bool:
    parts = re.split(r"<[^>]+>", template)
    return re.fullmatch(".+?".join(re.escape(part) for part in parts), message) is not None


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and modification time."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
    }


class Case:
    """What a case has to work with: its folder, a copy of the digits data, the smoke config."""

    def __init__(self, folder: Path, digits_dir: Path, monkeypatch) -> None:
        self.folder = folder
        self.digits_dir = digits_dir
        self.monkeypatch = monkeypatch

    def overrides(self, *more: str) -> list[str]:
        return [f"data.path={self.digits_dir}", f"output_root={self.folder / 'results'}", *more]

    def lottery(self, *more: str) -> list[str]:
        return ["lottery", SMOKE, *self.overrides(*more), "--quiet"]

    def own_data(self) -> Path:
        """A copy of the digits data this case may damage."""
        copy = self.folder / "digits"
        shutil.copytree(self.digits_dir, copy)
        return copy

    def experiment(self, *more: str) -> Layout:
        config = load(SMOKE, self.overrides(*more))
        return Layout(config.experiment_dir)


def write_without_labels(folder: Path) -> None:
    """A .beton holding images and an id, but no label field."""
    import numpy as np
    from ffcv.fields import IntField, NDArrayField
    from ffcv.writer import DatasetWriter

    items = [(np.zeros((1, 8, 8), np.uint8), index) for index in range(1257)]
    writer = DatasetWriter(
        str(folder / "train.beton"),
        {"image": NDArrayField(np.dtype("uint8"), (1, 8, 8)), "id": IntField()},
        num_workers=1,
    )
    writer.from_indexed_dataset(items)


def relabel(path: Path, label: int) -> None:
    """Set the first example's label in a .beton's metadata, in place."""
    import numpy as np
    from ffcv.reader import Reader
    from ffcv.types import HeaderType

    reader = Reader(str(path))
    offset = HeaderType.itemsize + reader.field_descriptors.nbytes
    table = np.memmap(path, reader.metadata.dtype, "r+", offset, shape=(reader.num_samples,))
    table[f"f{reader.field_names.index('label')}"][0] = label
    table.flush()


def damage(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def listening_socket() -> socket.socket:
    """Something that accepts TCP connections on loopback (and is no Ray)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def prepare_missing_config(case):
    return ["lottery", str(case.folder / "nope.yaml")]


def prepare_config_not_yaml(case):
    (case.folder / "exp.yaml").write_text("training: [\n")
    return ["lottery", str(case.folder / "exp.yaml")]


def prepare_damaged_result(case):
    layout = case.experiment()
    layout.write_metrics(RunKey(0, 0), {"level": 0})
    damage(layout.metrics_path(RunKey(0, 0)), keep=0.5)
    return case.lottery()


def prepare_mask_misfit(case):
    layout = case.experiment()
    Mask({"fc1.weight": torch.ones(3, 3, dtype=torch.bool)}).save(layout.mask_path(RunKey(0, 1)))
    return case.lottery()


def prepare_other_config(case):
    layout = case.experiment()
    layout.root.mkdir(parents=True)
    identity = {"hash": layout.root.name.rsplit("-", 1)[1], "computes": {"seed": 99}}
    (layout.root / "identity.json").write_text(json.dumps(identity))
    return case.lottery()


def prepare_resume_world_size(case):
    layout = case.experiment()
    folder = layout.run_dir(RunKey(0, 0))
    (folder / "resume-000000020").mkdir(parents=True)
    torch.save({"step": 20}, folder / "resume-000000020" / "state.pt")
    (folder / "resume.json").write_text(json.dumps({"step": 20, "world_size": 4}))
    return case.lottery()


def prepare_corrupt_beton(case):
    data = case.own_data()
    size = (data / "train.beton").stat().st_size
    (data / "train.beton").write_bytes(os.urandom(size))
    return ["lottery", SMOKE, f"data.path={data}", f"output_root={case.folder / 'results'}"]


def prepare_truncated_beton(case):
    data = case.own_data()
    damage(data / "val.beton", keep=0.6)
    return ["lottery", SMOKE, f"data.path={data}", f"output_root={case.folder / 'results'}"]


def prepare_beton_without_labels(case):
    data = case.own_data()
    write_without_labels(data)
    return ["lottery", SMOKE, f"data.path={data}", f"output_root={case.folder / 'results'}"]


def prepare_label_beyond_classes(case):
    data = case.own_data()
    relabel(data / "train.beton", 12)
    return ["lottery", SMOKE, f"data.path={data}", f"output_root={case.folder / 'results'}"]


def prepare_ray_token_missing(case):
    server = listening_socket()
    case.monkeypatch.setattr(case, "server", server, raising=False)
    case.monkeypatch.setenv("HOME", str(case.folder / "home"))
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        case.monkeypatch.delenv(name, raising=False)
    return case.lottery(f"scaling.address=127.0.0.1:{server.getsockname()[1]}")


def prepare_not_enough_disk(case):
    """An output folder with 256 KB free, as shutil.disk_usage reports it (a small disk)."""
    small = case.folder / "small"
    small.mkdir()
    usage = shutil.disk_usage

    def nearly_full(path):
        found = usage(path)
        return found._replace(free=256 * 1024) if Path(path) == small else found

    case.monkeypatch.setattr(shutil, "disk_usage", nearly_full)
    return ["lottery", SMOKE, f"data.path={case.digits_dir}", f"output_root={small}"]


def prepare_dense_run_without_points(case):
    """A finished dense run that saved no weights beyond init, asked for a copy from step 20."""
    layout = case.experiment()
    layout.write_metrics(RunKey(0, 0), {"level": 0})
    torch.save({}, layout.final_path(RunKey(0, 0)))
    return ["instability", SMOKE, *case.overrides(), "--steps", "20it", "--quiet"]


def prepare_imagefolder(case, val_class: str = "cat", *options: str) -> list[str]:
    """An ImageNet-layout folder of one image per split, and the command writing it."""
    from PIL import Image

    for split, name in (("train", "cat"), ("val", val_class)):
        (case.folder / "images" / split / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(case.folder / "images" / split / name / "a.jpg")
    out = case.folder / "written"
    return ["data", "write", "--source", "imagefolder", "--root", str(case.folder / "images"),
            "--out", str(out), *options]  # fmt: skip


def prepare_config_not_utf8(case):
    (case.folder / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    return ["lottery", str(case.folder / "latin1.yaml")]


def prepare_saved_config_empty(case):
    layout = case.experiment()
    layout.root.mkdir(parents=True)
    layout.config_path.write_text("")
    return ["status", str(layout.root)]


def prepare_output_root_file(case):
    (case.folder / "results").write_text("not a folder")
    return case.lottery()


def prepare_output_root_read_only(case):
    """A folder this user cannot write, as os.access reports a read-only file system."""
    readonly = case.folder / "readonly"
    readonly.mkdir()
    access = os.access
    case.monkeypatch.setattr(
        os, "access", lambda path, mode: False if Path(path) == readonly else access(path, mode)
    )
    return ["lottery", SMOKE, f"data.path={case.digits_dir}", f"output_root={readonly / 'r'}"]


def prepare_fallback_unusable(case):
    return case.lottery(
        f"tracking.uri=http://127.0.0.1:{free_port()}",
        f"tracking.fallback_uri=http://127.0.0.1:{free_port()}",
    )


def finished_dense_run(case) -> Layout:
    """The experiment with its dense run finished (its files as a run writes them)."""
    layout = case.experiment()
    layout.run_dir(RunKey(0, 0)).mkdir(parents=True)
    torch.save(torch.nn.Linear(2, 2).state_dict(), layout.final_path(RunKey(0, 0)))
    layout.write_metrics(RunKey(0, 0), {"level": 0})
    return layout


class Planted:
    """Unpickling it runs a command: what someone who can write a results folder could plant."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


def prepare_unsafe_result(case):
    layout = finished_dense_run(case)
    torch.save(
        {"weight": torch.zeros(2), "x": Planted(case.folder / "ran")},
        layout.final_path(RunKey(0, 0)),
    )
    return case.lottery()


def prepare_unreadable_result(case):
    layout = finished_dense_run(case)
    final = layout.final_path(RunKey(0, 0))
    load = torch.load

    def stale(path, *args, **kwargs):
        if Path(path) == final:
            raise OSError(errno.ESTALE, os.strerror(errno.ESTALE), str(path))
        return load(path, *args, **kwargs)

    case.monkeypatch.setattr(torch, "load", stale)
    return case.lottery()


def prepare_mask_wrong_structure(case):
    layout = case.experiment()
    layout.run_dir(RunKey(0, 1)).mkdir(parents=True)
    short = {"fc.weight": {"shape": [300, 64], "bits": torch.zeros(7, dtype=torch.uint8)}}
    torch.save(short, layout.mask_path(RunKey(0, 1)))
    return case.lottery()


def prepare_dangling_pointer(case):
    layout = case.experiment()
    folder = layout.run_dir(RunKey(0, 0))
    folder.mkdir(parents=True)
    (folder / "resume.json").write_text(json.dumps({"step": 20, "world_size": 2}))
    return case.lottery()


def prepare_malformed_info(case):
    data = case.own_data()
    (data / "info.json").write_text('{"source": "digits"')
    return ["lottery", SMOKE, f"data.path={data}", f"output_root={case.folder / 'results'}"]


def prepare_other_data(case):
    """An experiment whose identity records data of other content than its folder holds."""
    config = load(SMOKE, case.overrides())
    info = ensure_written(case.digits_dir, "digits")
    other = dataclasses.replace(info, digests={**info.digests, "train": "0" * 64})
    write_identity(config, other)
    return case.lottery()


def prepare_export_unfinished(case):
    """A ticket's folder holding a checkpoint but no metrics.json: it is still training."""
    layout = case.experiment()
    (layout.config_path.parent).mkdir(parents=True)
    layout.config_path.write_text("seed: 0\n")
    folder = layout.run_dir(RunKey(0, 1))
    folder.mkdir(parents=True)
    (folder / "resume.json").write_text("{}")
    return ["export", str(folder)]


CASES = {
    "missing-config": prepare_missing_config,
    "config-not-yaml": prepare_config_not_yaml,
    "unknown-key": lambda case: case.lottery("pruning.levles=3"),
    "wrong-type": lambda case: case.lottery("seed=one"),
    "bad-duration": lambda case: case.lottery("training.duration=12xx"),
    "fraction-out-of-range": lambda case: case.lottery("pruning.fraction=1.5"),
    "negative-levels": lambda case: case.lottery("pruning.levels=-2"),
    "no-workers": lambda case: case.lottery("scaling.num_workers=0"),
    "unknown-model": lambda case: case.lottery("model.name=resnet5"),
    "dropout-without-dropout": lambda case: case.lottery("model.dropout=0.5"),
    "unknown-baseline": lambda case: ["branch", "grasp", SMOKE, *case.overrides(), "--levels", "1"],
    "missing-data": lambda case: [
        "lottery",
        SMOKE,
        "data.dataset=mnist",
        f"data.path={case.folder / 'mnist'}",
    ],  # fmt: skip
    "corrupt-beton": prepare_corrupt_beton,
    "truncated-beton": prepare_truncated_beton,
    "beton-without-labels": prepare_beton_without_labels,
    "labels-outside-classes": lambda case: case.lottery("model.num_classes=5"),
    "label-beyond-data-classes": prepare_label_beyond_classes,
    "batch-not-divisible": lambda case: case.lottery("data.batch_size=61"),
    "batch-larger-than-data": lambda case: case.lottery("data.batch_size=2000"),
    "rewind-not-before-end": lambda case: case.lottery("rewinding.step=40it"),
    "mask-does-not-fit": prepare_mask_misfit,
    "folder-of-another-config": prepare_other_config,
    "damaged-result-file": prepare_damaged_result,
    "resume-with-other-world-size": prepare_resume_world_size,
    "ray-unreachable": lambda case: case.lottery(f"scaling.address=127.0.0.1:{free_port()}"),
    "ray-token-missing": prepare_ray_token_missing,
    "mlflow-unreachable": lambda case: case.lottery(f"tracking.uri=http://127.0.0.1:{free_port()}"),
    "relative-stage": lambda case: case.lottery("data.stage=staged/data"),
    "mlflow-file-store": lambda case: case.lottery(f"tracking.uri=file://{case.folder / 'mlruns'}"),
    "too-many-workers": lambda case: case.lottery("scaling.num_workers=64"),
    "too-many-gpus": lambda case: case.lottery("scaling.use_gpu=true"),
    "gpu-share-on-cpu": lambda case: case.lottery("scaling.gpus_per_worker=0.25"),
    "gpu-share-in-ddp": lambda case: case.lottery(
        "scaling.use_gpu=true", "scaling.gpus_per_worker=0.5", "scaling.num_workers=2"
    ),
    "not-enough-disk": prepare_not_enough_disk,
    "imagefolder-val-class": lambda case: prepare_imagefolder(case, "cta"),
    "holdout-out-of-range": lambda case: prepare_imagefolder(case, "cat", "--holdout", "1"),
    "holdout-not-imagefolder": lambda case: [
        "data",
        "write",
        "--source",
        "digits",
        "--out",
        str(case.folder / "d"),
        "--holdout",
        "5",
    ],  # fmt: skip
    "scratch-b-factor-below-one": lambda case: case.lottery("baselines.scratch_b_max_factor=0.5"),
    "compare-one-experiment": lambda case: ["compare", SMOKE, *case.overrides()],
    "compare-override-first": lambda case: ["compare", "seed=1", SMOKE, SMOKE],
    "compare-folder-without-config": lambda case: ["compare", str(case.folder), SMOKE],
    "compare-nothing-finished": lambda case: [
        "compare",
        SMOKE,
        *case.overrides(),
        SMOKE,
        *case.overrides("seed=1"),
    ],  # fmt: skip
    "concurrent-runs-do-not-fit": lambda case: case.lottery(
        "scaling.num_workers=1", "scaling.concurrent_runs=1000"
    ),
    "plan-without-throughput": lambda case: ["plan", SMOKE, *case.overrides()],
    "trunk-not-finished": lambda case: [
        "branch",
        "snip",
        SMOKE,
        *case.overrides(),
        "--levels",
        "2",
    ],
    "levels-beyond-config": lambda case: [*case.lottery(), "--levels", "1-3"],
    "auto-without-candidates": lambda case: case.lottery("rewinding.step=auto"),
    "instability-without-starts": lambda case: ["instability", SMOKE, *case.overrides()],
    "instability-bad-steps": lambda case: [
        "instability",
        SMOKE,
        *case.overrides(),
        "--steps",
        "1x",
    ],
    "instability-step-not-saved": prepare_dense_run_without_points,
    "section-renamed": lambda case: case.lottery("stability.points=5"),
    "config-not-unicode": prepare_config_not_utf8,
    "saved-config-empty": prepare_saved_config_empty,
    "output-root-is-a-file": prepare_output_root_file,
    "output-root-read-only": prepare_output_root_read_only,
    "ray-port-out-of-range": lambda case: case.lottery("scaling.address=127.0.0.1:99999"),
    "mlflow-url-with-credentials": lambda case: case.lottery(
        f"tracking.uri=http://alice:s3cret@127.0.0.1:{free_port()}/"
    ),
    "fallback-unusable": prepare_fallback_unusable,
    "channel-score-needs-batchnorm": lambda case: case.lottery(
        "pruning.granularity=channel", "pruning.channel_score=bn_gamma"
    ),
    "levels-leave-no-weight": lambda case: case.lottery(
        "pruning.levels=12", "pruning.fraction=0.9"
    ),
    "unsafe-result-file": prepare_unsafe_result,
    "unreadable-result-file": prepare_unreadable_result,
    "mask-wrong-structure": prepare_mask_wrong_structure,
    "dangling-checkpoint-pointer": prepare_dangling_pointer,
    "malformed-data-info": prepare_malformed_info,
    "other-data": prepare_other_data,
    "export-not-a-run": lambda case: ["export", str(case.folder)],
    "export-unfinished-run": prepare_export_unfinished,
}


def test_every_documented_kind_has_a_case_and_every_case_a_row():
    assert set(documented()) == set(CASES) | {"unknown-slurm-partition"}
    assert len(documented()) >= 20


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_input_is_refused_in_one_line_before_any_work(
    kind, tmp_path, digits_dir, monkeypatch, capsys
):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # where a local MLflow store or data would be written
    for name in (USERNAME, PASSWORD):  # credentials a URI gives move there: undone after
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    case = Case(tmp_path, digits_dir, monkeypatch)
    argv = CASES[kind](case)
    capsys.readouterr()  # what preparing the case printed
    before, data_before = tree(tmp_path), tree(digits_dir)
    try:
        code = main(argv)
        after = tree(tmp_path)
    finally:
        if getattr(case, "server", None):
            case.server.close()
    stderr = capsys.readouterr().err.strip()
    assert code == 2, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith(PREFIX)
    assert matches(documented()[kind], stderr.removeprefix(PREFIX)), stderr
    assert after == before and tree(digits_dir) == data_before  # nothing written or changed
    assert "s3cret" not in stderr  # a password in a URI is never printed
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()


def test_an_unreachable_server_with_a_fallback_store_logs_there(tmp_path, capsys):
    from scale_lth.preflight import check_tracking

    uri = f"http://127.0.0.1:{free_port()}"
    fallback = f"sqlite:///{tmp_path / 'fallback.db'}"
    config = load(SMOKE, [f"tracking.uri={uri}", f"tracking.fallback_uri={fallback}"])
    assert check_tracking(config, uri).tracking.uri == fallback
    assert f"logging to {fallback} instead" in capsys.readouterr().out
    assert check_tracking(load(SMOKE), "sqlite:///x.db") == load(SMOKE)  # nothing to check


def test_a_config_refused_in_a_fresh_folder_writes_and_prints_nothing_first(
    tmp_path, monkeypatch, capsys
):
    """The embedded digits are written only once every check has passed."""
    monkeypatch.chdir(tmp_path)
    assert main(["lottery", SMOKE, "training.duration=0it"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, (out, err)
    assert list(tmp_path.iterdir()) == []
