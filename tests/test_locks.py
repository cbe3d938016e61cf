"""One process at a time holds a lock, which records who; the kernel frees the lock of a
process that dies holding it, and the next holder learns from whom it took it over."""

import os

from scale_lth.locks import FileLock, this_process


def test_a_held_lock_is_refused_to_anyone_else_and_names_its_holder(tmp_path):
    first, second = FileLock(tmp_path / "lock"), FileLock(tmp_path / "lock")
    assert first.acquire() and first.left_by is None
    assert not second.acquire()  # another open of the file: another holder
    assert second.holder() == this_process()
    first.release()
    assert first.holder() is None  # a clean release leaves no record
    assert second.acquire() and second.left_by is None


def test_the_lock_of_a_process_that_died_holding_it_is_taken_over(tmp_path):
    child = os.fork()
    if child == 0:  # takes the lock and dies without releasing it
        lock = FileLock(tmp_path / "lock")
        os._exit(0 if lock.acquire() else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    lock = FileLock(tmp_path / "lock")
    assert lock.acquire()
    assert lock.left_by is not None and lock.left_by["pid"] == child
    assert lock.holder() == this_process()
