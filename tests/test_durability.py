"""Results survive a power loss: a file is fsynced before it takes its name and its folder
after, so the name is on disk too; a run's previous checkpoint goes only once the pointer to
the new one is durable; and data writing that stops leaves no partial file behind."""

import os
import stat

import pytest

from scale_lth.data import sources, write_splits
from scale_lth.storage import atomic_write
from scale_lth.training.state import Checkpoints


def record_fsyncs(monkeypatch) -> list[tuple[str, set[str]]]:
    """Every fsync from now on: what it synced (a file or a folder) and, for a folder, the
    names in it at that moment."""
    calls: list[tuple[str, set[str]]] = []
    real = os.fsync

    def fsync(descriptor: int) -> None:
        if stat.S_ISDIR(os.fstat(descriptor).st_mode):
            calls.append(("folder", set(os.listdir(descriptor))))
        else:
            calls.append(("file", set()))
        real(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_a_file_is_synced_then_named_then_its_folder_synced(tmp_path, monkeypatch):
    calls = record_fsyncs(monkeypatch)
    atomic_write(tmp_path / "metrics.json", "{}")
    assert [kind for kind, _ in calls] == ["file", "folder"]
    assert calls[1][1] == {"metrics.json"}  # the folder synced holds the name, no temporary


def test_the_old_checkpoint_goes_only_after_the_new_pointer_is_durable(tmp_path, monkeypatch):
    checkpoints = Checkpoints(tmp_path)
    for step in (10, 20):
        checkpoints.folder(step).mkdir()
    checkpoints.publish(10, world_size=1)
    calls = record_fsyncs(monkeypatch)
    removed_after: list[int] = []
    real_rmtree = __import__("shutil").rmtree

    def rmtree(path, **options):
        removed_after.append(len(calls))
        real_rmtree(path, **options)

    monkeypatch.setattr("scale_lth.training.state.shutil.rmtree", rmtree)
    checkpoints.publish(20, world_size=1)
    assert checkpoints.latest() == checkpoints.folder(20)
    assert not checkpoints.folder(10).exists()
    synced_folder = [index for index, (kind, names) in enumerate(calls) if kind == "folder"]
    assert synced_folder and removed_after[0] > synced_folder[0]  # the pointer's folder first
    assert "resume.json" in calls[synced_folder[0]][1]


def test_data_writing_that_stops_leaves_no_partial_file(tmp_path, monkeypatch):
    from ffcv.writer import DatasetWriter

    def interrupted(self, *args, **kwargs):
        with open(self.fname, "wb") as file:  # a partial file, as a real writer makes
            file.write(b"\0" * 4096)
        raise KeyboardInterrupt

    monkeypatch.setattr(DatasetWriter, "from_indexed_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_splits(sources.digits(), tmp_path / "digits", source="digits")
    assert sorted(path.name for path in (tmp_path / "digits").iterdir()) == []
