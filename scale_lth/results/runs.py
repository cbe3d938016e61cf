"""Runs and their names: a run is a replicate, a level and a branch, the branch being the run's
folder under the level. A branch names either a method's run (the ticket or a baseline, with a
hash of the method's own settings where they differ from the defaults: ``snip-3f9a0c``) or a
run of the instability analysis (copy ``a`` or ``b`` from a start, or the ``path`` measured
between them: ``stability/a@100it``). Branch names are parsed here alone, into those two kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from scale_lth import methods

# The folder of a level's instability runs, named when the analysis was called "stability":
# kept so that earlier experiments' runs are found.
INSTABILITY_FOLDER = "stability"
COPIES = ("a", "b")  # the two copies of an instability measurement
PATH = "path"  # the measurement of the path between them


@dataclass(frozen=True)
class MethodRun:
    """A run of a method of the registry (scale_lth.methods)."""

    method: str
    settings: str = ""  # the hash of the method's own non-default settings, if any

    @property
    def is_ticket(self) -> bool:
        return self.method == methods.TICKET

    @property
    def order(self) -> tuple[int, str]:
        """Where it goes in tables and legends: the registry's order, then by settings."""
        return methods.order(self.method), self.settings

    @property
    def label(self) -> str:
        """What plots call it: its method's label, and the settings hash if any."""
        return methods.label(self.method) + (f" [{self.settings}]" if self.settings else "")


@dataclass(frozen=True)
class InstabilityRun:
    """A run of the instability analysis: copy ``a`` or ``b`` trained from ``at`` (a duration
    like ``100it`` at level 0, ``rewind`` at a level's own rewind point), or the ``path``
    measured between them (it trains nothing)."""

    part: str
    at: str

    @property
    def measures_path(self) -> bool:
        return self.part == PATH


def instability_branch(part: str, at: str) -> str:
    return f"{INSTABILITY_FOLDER}/{part}@{at}"


def parse_branch(branch: str) -> MethodRun | InstabilityRun:
    head, slash, rest = branch.partition("/")
    if slash:
        part, at_sign, at = rest.partition("@")
        if head != INSTABILITY_FOLDER or part not in (*COPIES, PATH) or not at_sign or not at:
            raise ValueError(f"{branch!r} names no run of the instability analysis")
        return InstabilityRun(part, at)
    method, _, settings = branch.partition(methods.SETTINGS_SEPARATOR)
    return MethodRun(method, settings)


def method_run(branch: str) -> MethodRun:
    """The method run a branch names (tables, legends and plots list only those)."""
    kind = parse_branch(branch)
    if not isinstance(kind, MethodRun):
        raise ValueError(f"{branch!r} is a run of the instability analysis, not of a method")
    return kind


def branch_order(branch: str) -> tuple[int, str]:
    """Where a method's branch goes in tables and legends."""
    return method_run(branch).order


def branch_label(branch: str) -> str:
    """What plots call a method's branch."""
    return method_run(branch).label


@dataclass(frozen=True, order=True)
class RunKey:
    replicate: int
    level: int
    branch: str = methods.TICKET

    @cached_property
    def kind(self) -> MethodRun | InstabilityRun:
        """The branch, parsed."""
        return parse_branch(self.branch)

    @property
    def method(self) -> str | None:
        """The method this run trains; None for a run of the instability analysis."""
        return self.kind.method if isinstance(self.kind, MethodRun) else None

    @property
    def is_ticket(self) -> bool:
        return isinstance(self.kind, MethodRun) and self.kind.is_ticket

    @property
    def in_instability(self) -> bool:
        """Whether this is a run of the instability analysis (a copy or a path measurement)."""
        return isinstance(self.kind, InstabilityRun)

    @property
    def measures_path(self) -> bool:
        """Whether this is a path measurement of the instability analysis (it trains nothing)."""
        return isinstance(self.kind, InstabilityRun) and self.kind.measures_path

    @property
    def run_id(self) -> str:
        return f"replicate_{self.replicate}/level_{self.level}/{self.branch}"

    def __str__(self) -> str:
        return f"replicate {self.replicate}, level {self.level}, {self.branch}"


def instability_runs(replicate: int, level: int, at: str) -> list[RunKey]:
    """The two copies from ``at`` and the path measurement between them."""
    return [RunKey(replicate, level, instability_branch(part, at)) for part in (*COPIES, PATH)]


def copies_of(path: RunKey) -> list[RunKey]:
    """The two copies a path measurement reads."""
    kind = path.kind
    if not isinstance(kind, InstabilityRun):
        raise ValueError(f"{path} is no run of the instability analysis")
    return instability_runs(path.replicate, path.level, kind.at)[: len(COPIES)]
