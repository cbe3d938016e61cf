"""Every method an experiment trains, declared once: the winning ticket and each baseline.

A method says how its runs start, in words the lottery engine interprets (``scale_lth.lottery
.starts``): which weights, which mask, from which step, on which schedule. From that follow the
earlier results it needs. It also names its label (plots, tables), its place in the order
(tables, legends) and its own settings: the fields of the ``baselines`` section that identify
its runs (they suffix its run folder, never rename the trunk). The config's validation, the
command line's help, the report's order and its plot labels read this registry, so a method
added here is known everywhere. A leaf module: it imports nothing of the project.

The words:

- weights: ``fresh`` (new random weights, a seed of the run's own), ``init`` (the replicate's
  step-0 weights), ``rewind`` (the replicate's step-k weights), ``trained`` (the final weights of
  the level the mask was pruned from: the previous level, or level 0 when pruning is one-shot);
- mask: ``ticket`` (the level's magnitude-pruning mask), ``random`` (a random mask with the
  ticket's count in every tensor), ``snip`` (SNIP's mask at the init weights, the ticket's
  count in total);
- step: ``zero`` or ``rewind`` (step k, where the learning-rate schedule resumes);
- schedule: ``same`` (the experiment's), ``final_lr`` (the rest of the steps at the schedule's
  final rate: fine-tuning), ``dense_compute`` (the steps and milestones stretched by the dense
  network's FLOPs over the sparse one's, at most ``baselines.scratch_b_max_factor``: Scratch-B).
"""

from __future__ import annotations

from dataclasses import dataclass

TICKET = "main"  # the trunk's run folder name (``RunKey.branch``), kept for existing results
SETTINGS_SEPARATOR = "-"  # between a method and the hash of its own settings: ``snip-3f9a0c``


@dataclass(frozen=True)
class Start:
    """Where a method's runs start, in the registry's words."""

    weights: str
    mask: str
    step: str
    schedule: str = "same"

    def __post_init__(self) -> None:
        for part, value, allowed in (
            ("weights", self.weights, ("fresh", "init", "rewind", "trained")),
            ("mask", self.mask, ("ticket", "random", "snip")),
            ("step", self.step, ("zero", "rewind")),
            ("schedule", self.schedule, ("same", "final_lr", "dense_compute")),
        ):
            if value not in allowed:
                raise ValueError(f"a start's {part} is one of {', '.join(allowed)}, not {value!r}")

    @property
    def needs(self) -> tuple[str, ...]:
        """The earlier results a run of this start reads."""
        needs = {"init": ("init",), "rewind": ("rewind",), "trained": ("trained",)}
        found = [*needs.get(self.weights, ()), "ticket_mask"]
        if self.step == "rewind" and self.weights != "rewind":
            found.append("rewind")  # the step k itself, saved with the rewind weights
        return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class Method:
    name: str
    label: str  # what plots and tables call it
    summary: str  # one line of help
    start: Start
    settings: tuple[str, ...] = ()  # its own fields of the ``baselines`` section


TICKET_STARTS = {
    # rewinding.mode -> how level l >= 1 of the trunk starts
    "weights": Start("rewind", "ticket", "rewind"),  # IMP with late resetting (LTH at scale)
    "lr": Start("trained", "ticket", "rewind"),  # learning-rate rewinding (Renda et al.)
    "finetune": Start("trained", "ticket", "rewind", "final_lr"),  # fine-tuning (Renda et al.)
}

METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method(
            TICKET,
            "winning ticket (IMP)",
            "the trunk: magnitude pruning, then rewinding.mode from step k",
            TICKET_STARTS["weights"],
        ),
        Method(
            "reinit",
            "random reinit (Scratch-E)",
            "the ticket's mask on fresh random weights, from step 0",
            Start("fresh", "ticket", "zero"),
        ),
        Method(
            "random_prune",
            "random pruning",
            "a random mask with the ticket's per-layer counts, on the rewound weights",
            Start("rewind", "random", "rewind"),
        ),
        Method(
            "snip",
            "SNIP",
            "SNIP's mask chosen at the init weights, trained from step 0",
            Start("init", "snip", "zero"),
            settings=("snip_batches",),
        ),
        Method(
            "scratch_b",
            "Scratch-B",
            "the ticket's mask on fresh weights, trained for the dense network's compute",
            Start("fresh", "ticket", "zero", "dense_compute"),
            settings=("scratch_b_max_factor",),
        ),
    )
}


def start_of(method: str, rewinding_mode: str) -> Start:
    """How a method's runs at levels >= 1 start (the ticket's follows ``rewinding.mode``)."""
    return TICKET_STARTS[rewinding_mode] if method == TICKET else METHODS[method].start


def branch(method: str, settings: str = "") -> str:
    """The folder of a method's runs: the method, then the hash of its own non-default
    settings, if any (scale_lth.config.hashing.method_hash)."""
    return f"{method}{SETTINGS_SEPARATOR}{settings}" if settings else method


def baselines() -> list[str]:
    """The baselines' names, in the registry's order."""
    return [name for name in METHODS if name != TICKET]


def order(name: str) -> int:
    """A method's place in tables and legends (unknown names last)."""
    names = list(METHODS)
    return names.index(name) if name in names else len(names)


def label(name: str) -> str:
    return METHODS[name].label if name in METHODS else name


def owner_of(setting: str) -> str | None:
    """The method whose own setting (a ``baselines`` field) this is, if any."""
    return next((m.name for m in METHODS.values() if setting in m.settings), None)
