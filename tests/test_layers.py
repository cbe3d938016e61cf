"""The package's layers: what reads or writes results (tracking, reports, progress) hears
about runs through the results layer and never imports the lottery engine."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "scale_lth"


def imported_modules(path: Path) -> set[str]:
    """Every scale_lth module ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
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


def test_the_results_layer_imports_nothing_above_it():
    allowed = {"scale_lth.storage", "scale_lth.errors"}
    assert imported_modules(PACKAGE / "results.py") <= allowed
