"""Files shared by processes: writes that never leave a half-written file under the final
name, and reads that load data and never code and name a damaged, unsafe or unreadable file
instead of failing somewhere inside a loader."""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from scale_lth.errors import UserError


class DamagedFile(UserError):
    """A result file that exists but is truncated or corrupt; the message names it and the
    fix."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} is damaged (truncated or corrupt): delete it and run again (the run it "
            "belongs to is redone from its last good state)"
        )


class UnsafeFile(UserError):
    """A result file that holds more than data: loading it would run code of its choosing."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} holds more than tensors and plain values (loading it would run code it "
            "names), so it was not loaded: if you did not write it, someone who can write this "
            "folder did; delete it (its run is trained again) and check who can write there"
        )


class UnreadableFile(UserError):
    """A result file that could not be read for a reason other than its content."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"cannot read {path}: {reason}; the file is not known to be damaged: fix the cause "
            "(permissions, the file system, memory) and run again"
        )


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return "not enough memory" if isinstance(error, MemoryError) else str(error)


def load_torch(path: Path, mmap: bool = False, allow: Sequence[Any] = ()) -> Any:
    """``torch.load`` of a project file onto the CPU as data only (``weights_only``: nothing in
    the file can run code; ``allow`` names the few more types some files hold). With ``mmap``
    the archive's index and records are read and checked while tensor bytes stay on disk (a
    cheap check of a large file)."""
    import torch  # here, not above: processes that never touch a tensor (the run queue's Ray
    # actor, `scale-lth status`) start without it, about a second sooner

    try:
        with torch.serialization.safe_globals(list(allow)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError:  # more than data, or garbage: torch says the same of both
        raise (UnsafeFile if names_code(path) else DamagedFile)(path) from None
    except (OSError, MemoryError) as error:  # permissions, NFS (ESTALE, EIO), memory
        raise UnreadableFile(path, _reason(error)) from None
    except Exception:  # what torch's zip reader meets in a truncated or corrupt file
        raise DamagedFile(path) from None


def names_code(path: Path) -> bool:
    """Whether a torch archive names callables beyond tensors and plain values (what a pickle
    that runs code on loading must name); garbage, or a file of another format, does not."""
    import torch

    if not zipfile.is_zipfile(path):
        return False
    try:
        return bool(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # an archive too damaged to list
        return False


def load_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise
    except (OSError, MemoryError) as error:
        raise UnreadableFile(path, _reason(error)) from None
    except ValueError:  # not JSON, or not UTF-8
        raise DamagedFile(path) from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()  # read once: results are as readable as the user's umask makes new files


def atomic_write(path: Path, data: str | bytes, private: bool = False) -> None:
    """``data`` under ``path``, all or nothing, and durable: written to a temporary file of a
    unique name beside it, fsynced, renamed over ``path``, and the folder fsynced so that the
    rename survives a power loss. Readable as the umask allows, or by the owner alone with
    ``private``."""
    content = data.encode() if isinstance(data, str) else data
    _atomic_write(path, lambda file: file.write(content), private)


def atomic_torch_save(obj: object, path: Path) -> None:
    """``torch.save`` as ``atomic_write`` writes."""
    import torch

    _atomic_write(path, lambda file: torch.save(obj, file))


def atomic_write_json(path: Path, value: Any) -> None:
    """``value`` as indented JSON, as ``atomic_write`` writes."""
    atomic_write(path, json.dumps(value, indent=1) + "\n")


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object], private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, 0o600 if private else 0o666 & ~UMASK)
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """fsync a folder: the names created, renamed or removed in it are on disk."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
