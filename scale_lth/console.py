"""Lines for the person watching: straight to stdout, flushed."""

import sys


def say(line: str) -> None:
    """One line to stdout (not print(): Ray Train workers patch it to log each line twice)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
