"""The error every layer raises for a problem with what the user asked for: the command shows
its message as one line and exits with code 2, before any work starts."""


class UserError(Exception):
    """A problem with the user's input or environment; the message names it and the fix."""


class WorkerError(Exception):
    """A run failed inside the workers; the message is that error in one line (exit code 1)."""
