"""The package's layers, read from the source with ``ast`` (imports inside functions count):
what reads or writes results (tracking, reports, progress) hears about runs through the results
layer and never imports the lottery engine; the method registry and the results layer sit at
the bottom; no module reaches itself again through what it imports."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "scale_lth"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """Every scale_lth module ``path`` imports, at any depth of its code (``from a import b``
    counts as ``a.b`` where that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("scale_lth")}


def test_tracking_reports_and_progress_never_import_the_lottery_engine():
    readers = [
        *PACKAGE.glob("tracking/*.py"),
        *PACKAGE.glob("report/*.py"),
        PACKAGE / "progress.py",
    ]
    assert len(readers) >= 6
    for path in readers:
        engine = sorted(
            name for name in imported_modules(path) if name.startswith("scale_lth.lottery")
        )
        assert engine == [], f"{path.relative_to(PACKAGE)} imports {engine}"


def test_the_registry_and_the_results_layer_import_nothing_above_them():
    assert imported_modules(PACKAGE / "methods.py") == set()
    allowed = {"scale_lth.methods", "scale_lth.storage", "scale_lth.errors"}
    for path in PACKAGE.glob("results/*.py"):
        above = {
            name for name in imported_modules(path) if not name.startswith("scale_lth.results")
        }
        assert above <= allowed, path.name


def test_the_engine_never_calls_up_into_what_drives_it():
    above = ("scale_lth.orchestration", "scale_lth.tracking", "scale_lth.report",
             "scale_lth.driver", "scale_lth.preflight", "scale_lth.cli")  # fmt: skip
    for name, path in MODULES.items():
        if name.startswith(("scale_lth.lottery", "scale_lth.training", "scale_lth.pruning")):
            upward = sorted(i for i in imported_modules(path) if i.startswith(above))
            assert upward == [], f"{name} imports {upward}"


def test_no_module_imports_itself_through_others():
    graph = {name: imported_modules(path) & set(MODULES) for name, path in MODULES.items()}
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycle = path[path.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert "scale_lth.lottery.runner" in graph and len(graph) > 40
