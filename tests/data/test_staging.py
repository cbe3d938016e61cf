"""``data.stage``: the data copied once to a node-local folder, checked against the digests
``info.json`` records, reused by later runs, and never read half-copied."""

import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from scale_lth.data import DataError, DataInfo
from scale_lth.data.info import content_digest
from scale_lth.data.staging import stage


def files(folder):
    return sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))


def test_the_data_is_copied_once_and_holds_what_the_source_holds(digits_dir, tmp_path):
    staged = stage(digits_dir, str(tmp_path / "local"))
    assert staged.parent == tmp_path / "local"
    info = DataInfo.load(digits_dir)
    assert files(staged) == sorted(["info.json", *(f"{split}.beton" for split in info.splits)])
    assert DataInfo.load(staged) == info
    for split, digest in info.digests.items():
        assert content_digest(staged / f"{split}.beton") == digest  # as written, independently
    before = {path.name: os.stat(path) for path in staged.iterdir()}
    assert stage(digits_dir, str(tmp_path / "local")) == staged
    for path in staged.iterdir():  # reused: not one file written again
        assert os.stat(path).st_ino == before[path.name].st_ino
        assert os.stat(path).st_mtime_ns == before[path.name].st_mtime_ns


def test_no_stage_reads_the_source(digits_dir):
    assert stage(digits_dir, "") == digits_dir


def test_the_stage_may_name_variables_of_the_node(digits_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("NODE_SCRATCH", str(tmp_path / "scratch"))
    assert stage(digits_dir, "$NODE_SCRATCH/data").parent == tmp_path / "scratch" / "data"
    monkeypatch.delenv("NODE_SCRATCH")
    with pytest.raises(DataError, match=r"data.stage \$NODE_SCRATCH/data: \$NODE_SCRATCH is not"):
        stage(digits_dir, "$NODE_SCRATCH/data")


def test_a_copy_cut_short_is_made_again(digits_dir, tmp_path):
    staged = stage(digits_dir, str(tmp_path))
    beton = staged / "train.beton"
    with open(beton, "r+b") as cut:
        cut.truncate(beton.stat().st_size // 2)
    assert stage(digits_dir, str(tmp_path)) == staged
    assert content_digest(beton) == DataInfo.load(digits_dir).digests["train"]


def test_a_copy_holding_other_data_is_never_read(digits_dir, tmp_path):
    """A source whose files no longer hold what info.json says (changed after it was written):
    the copy is refused, and nothing under the final names could pass for the data."""
    source = tmp_path / "source"
    shutil.copytree(digits_dir, source)
    other = DataInfo.load(source)
    other.digests["val"] = "0" * 64
    other.save(source)
    with pytest.raises(DataError, match="val.beton holds other data"):
        stage(source, str(tmp_path / "local"))
    (staged,) = [path for path in (tmp_path / "local").iterdir() if path.is_dir()]
    assert "info.json" not in files(staged)
    assert "val.beton" not in files(staged)


def test_workers_of_one_node_staging_at_once_share_one_complete_copy(digits_dir, tmp_path):
    """Three workers at once (threads: each takes the lock through its own open file, as
    processes do)."""
    with ThreadPoolExecutor(3) as pool:
        folders = list(pool.map(lambda _: stage(digits_dir, str(tmp_path)), range(3)))
    assert len(set(folders)) == 1
    staged = folders[0]
    info = DataInfo.load(staged)
    assert [path.name for path in staged.iterdir() if path.name.endswith(".part")] == []
    for split, digest in info.digests.items():
        assert content_digest(staged / f"{split}.beton") == digest
