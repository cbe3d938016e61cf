"""Waiting for something a test started to happen, with a hang guard (never a speed check)."""

import time


def wait_for(condition, seconds: float, what: str) -> None:
    """Until ``condition()`` holds; TimeoutError naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:  # a hang guard, not a speed check
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)
