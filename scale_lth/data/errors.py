"""The one error type of the data package: its message is the line a user sees."""

from scale_lth.errors import UserError


class DataError(UserError, ValueError):
    """Missing or malformed data; the message names the file or folder and the fix."""
