"""Training lengths written as ``'<N>ep'`` (epochs) or ``'<N>it'`` (iterations)."""

from __future__ import annotations

import re
from typing import NamedTuple

_PATTERN = re.compile(r"^\s*(\d+)\s*(ep|it)\s*$")


class Duration(NamedTuple):
    """A count of epochs or iterations; converted to iterations once the data size is known."""

    amount: int
    unit: str  # "ep" or "it"

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``'90ep'`` or ``'5000it'``; raise ValueError on anything else."""
        match = _PATTERN.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"expected a duration like '90ep' or '5000it', got {text!r}")
        return cls(int(match.group(1)), match.group(2))

    def iterations(self, iterations_per_epoch: int) -> int:
        """The length in optimizer steps."""
        if self.unit == "it":
            return self.amount
        return self.amount * iterations_per_epoch

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"
