"""An experiment's results, the lowest layer beside the config: run keys and branch names
(``runs``), every file and folder name of an experiment (``layout``) and the events a run sends
to whoever listens (``observer``). The engine writes results through it, and tracking, reports
and progress read them through it (never from the engine)."""

from scale_lth.results.layout import Layout
from scale_lth.results.observer import Observer
from scale_lth.results.runs import (
    COPIES,
    PATH,
    InstabilityRun,
    MethodRun,
    RunKey,
    branch_label,
    branch_order,
    copies_of,
    instability_branch,
    instability_runs,
    method_run,
)

__all__ = [
    "COPIES",
    "PATH",
    "InstabilityRun",
    "Layout",
    "MethodRun",
    "Observer",
    "RunKey",
    "branch_label",
    "branch_order",
    "copies_of",
    "instability_branch",
    "instability_runs",
    "method_run",
]
