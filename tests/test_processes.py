"""The guard of tests/conftest.py: a test without the integration mark that starts a process
fails, even where the code under test catches the refusal; forks stay allowed."""

import subprocess
import sys

import pytest

UNMARKED = """
import multiprocessing
import os
import subprocess
import sys

import pytest


def test_run():
    subprocess.run([sys.executable, "-c", "pass"])


def test_system():
    os.system("true")


def test_spawn():
    multiprocessing.get_context("spawn").Process(target=print).start()


def test_caught():
    try:
        subprocess.run([sys.executable, "-c", "pass"])
    except Exception:
        pass


@pytest.fixture
def server():
    subprocess.Popen([sys.executable, "-c", "pass"])


def test_with_a_server(server):
    pass


def test_fork():  # as FFCV's DatasetWriter does
    process = multiprocessing.get_context("fork").Process(target=print)
    process.start()
    process.join()
    assert process.exitcode == 0
"""


def test_a_test_without_the_integration_mark_that_starts_a_process_fails(pytester):
    pytester.makeconftest("from tests.conftest import pytest_runtest_call, pytest_runtest_setup")
    pytester.makepyfile(test_unmarked=UNMARKED)
    reports = pytester.inline_run().getreports("pytest_runtest_logreport")
    failed = {report.nodeid.split("::")[1]: report.longreprtext for report in reports
              if report.failed}  # fmt: skip
    assert set(failed) == {"test_run", "test_system", "test_spawn", "test_caught",
                           "test_with_a_server"}  # fmt: skip
    for name, text in failed.items():
        assert "without the integration mark: mark it `pytest.mark.integration`" in text, name
    assert "(true)" in failed["test_system"]
    assert f"([{sys.executable!r}, '-c', 'pass'])" in failed["test_caught"]
    assert [r.nodeid for r in reports if r.when == "call" and r.passed] == [
        "test_unmarked.py::test_fork"
    ]


@pytest.mark.integration
def test_a_test_with_the_integration_mark_may_start_a_process():
    assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0
