"""The error every layer raises for a problem with what the user asked for: the command shows
its message as one line and exits with code 2, before any work starts."""


class UserError(Exception):
    """A problem with the user's input or environment; the message names it and the fix."""


class WorkerError(Exception):
    """A run failed inside the workers; the message is that error in one line (exit code 1)."""


def one_line(error: BaseException) -> str:
    """An error as one line: its type and the first line of its message."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
