"""Data copied once to a node-local folder and read from there (``data.stage``).

ImageNet users spare the shared file system by copying the ``.beton`` files to each node's own
disk (``$SLURM_TMPDIR``) at the start of a job. With ``data.stage`` set, a worker's node holds
the data of ``data.path`` in ``<stage>/<source>-<digest>/`` (the digest of what ``info.json``
says the files hold, so other data never passes for it) and the worker reads from there.

One worker of a node copies, under a lock on the node's folder; the others on that node wait
and then reuse the copy. Each file is copied under a temporary name, its content digest checked
against the one ``info.json`` records, and only then renamed; ``info.json`` is written last, so
a folder that has it is complete, and a copy cut short is never read. A later run on the node
reuses a complete folder whose files have their sources' sizes (their digests were checked when
they were copied). The setting may name environment variables (``$SLURM_TMPDIR/data``), read
on the node.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from pathlib import Path

from scale_lth.data.errors import DataError
from scale_lth.data.info import DataInfo, content_digest, info_path
from scale_lth.locks import exclusive


def stage_root(setting: str) -> Path:
    """The node-local folder ``setting`` names here, its variables read from this process's
    environment."""
    expanded = os.path.expandvars(setting)
    if "$" in expanded:
        raise DataError(
            f"data.stage {setting}: {expanded[expanded.index('$') :].split('/')[0]} is not set "
            f"on {socket.gethostname()}: set it, or name a folder there"
        )
    return Path(expanded)


def staged_folder(info: DataInfo, setting: str) -> Path:
    """Where the data ``info`` describes lies once staged under ``setting``."""
    identity = json.dumps(info.identity(), sort_keys=True).encode()
    return stage_root(setting) / f"{info.source}-{hashlib.sha256(identity).hexdigest()[:12]}"


def is_complete(folder: Path, source: Path, info: DataInfo) -> bool:
    """``folder`` holds every split of ``source``, each file its source's size."""
    return info_path(folder).is_file() and all(
        info.beton(folder, split).is_file()
        and info.beton(folder, split).stat().st_size == info.beton(source, split).stat().st_size
        for split in info.splits
    )


def copy_checked(source: Path, target: Path, digest: str | None) -> None:
    """``source`` copied to ``target`` through a temporary name, renamed only when the copy
    holds what ``digest`` says (none recorded: what ``source`` holds)."""
    partial = target.with_name(f".{target.name}.part")
    shutil.copyfile(source, partial)
    expected = digest or content_digest(source)
    if content_digest(partial) != expected:
        partial.unlink()
        raise DataError(
            f"{source} copied to {target} holds other data (its digest differs): check the "
            f"disk under {target.parent}, or write the data again"
        )
    os.replace(partial, target)


def stage(source: Path, setting: str) -> Path:
    """The folder to read the data of ``source`` from: ``source`` itself where ``setting`` is
    empty, else its node-local copy, made now if this node has none."""
    if not setting:
        return source
    info = DataInfo.load(source)
    folder = staged_folder(info, setting)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(folder.parent / f".{folder.name}.lock"):
        if not is_complete(folder, source, info):
            info_path(folder).unlink(missing_ok=True)
            folder.mkdir(exist_ok=True)
            for split in info.splits:
                beton = info.beton(source, split)
                copy_checked(beton, folder / beton.name, info.digests.get(split))
            info.save(folder)
    return folder
