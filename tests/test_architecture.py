"""docs/architecture.md holds against the code: every import of the package (read with ``ast``,
imports inside functions included) goes down the page's layers or stays in its own, the
services are imported only where the page says, and no module reaches itself again through
what it imports."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "scale_lth"
PAGE = ROOT / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (``from a import b`` counts as
    ``a.b`` where that is a module of the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def table(heading: str) -> list[list[str]]:
    """The rows of the page's table under ``heading``, each a list of its cells."""
    section = PAGE.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def names(cell: str) -> list[str]:
    return re.findall(r"`([\w.]+)`", cell)


LAYERS = {
    f"scale_lth.{name}": int(row[0])
    for row in table("The layers, top to bottom")
    for name in names(row[2])
}
SERVICES = {names(row[0])[0]: [f"scale_lth.{n}" for n in names(row[1])] for row in table(
    "Where the services may be imported")}  # fmt: skip
NEVER = [
    ([f"scale_lth.{n}" for n in names(row[0])], [f"scale_lth.{n}" for n in names(row[1])])
    for row in table("Never, whatever the layers say")
]
ARROWS_UP = {(f"scale_lth.{names(row[0])[0]}", f"scale_lth.{names(row[1])[0]}") for row in table(
    "The one arrow up")}  # fmt: skip


def layer_of(module: str) -> tuple[str, int]:
    """The page's entry covering ``module`` (itself or the package it is in) and its layer."""
    for name, layer in LAYERS.items():
        if module == name or module.startswith(f"{name}."):
            return name, layer
    raise AssertionError(f"{module} is on no layer of docs/architecture.md: add it there")


def test_the_page_names_every_module_and_every_layer_once():
    assert sorted(set(LAYERS.values())) == list(range(1, 9))
    for module in MODULES:
        if module != "scale_lth":
            layer_of(module)


def test_every_import_goes_down_the_layers_or_stays_in_its_own():
    upward = []
    for module, path in MODULES.items():
        if module == "scale_lth":
            continue
        own, layer = layer_of(module)
        for target in imports(path):
            if not target.startswith("scale_lth.") or target.startswith(f"{own}."):
                continue
            name, target_layer = layer_of(target)
            if target_layer < layer and (module, name) not in ARROWS_UP:
                upward.append(f"{module} (layer {layer}) imports {target} (layer {target_layer})")
    assert upward == []


def test_the_engine_never_imports_what_listens_to_it():
    found = []
    for sources, targets in NEVER:
        for module, path in MODULES.items():
            if module != "scale_lth" and layer_of(module)[0] in sources:
                found += [
                    f"{module} imports {t}" for t in imports(path) if layer_of_or_none(t) in targets
                ]
    assert NEVER and found == []


def layer_of_or_none(module: str) -> str | None:
    return layer_of(module)[0] if module.startswith("scale_lth.") else None


def test_the_arrow_up_the_page_allows_is_there():
    """An exception the code no longer needs goes from the page too."""
    for source, target in ARROWS_UP:
        found = [m for m, path in MODULES.items() if m == source and target in imports(path)]
        assert found, f"{source} no longer imports {target}: remove the row"


def test_services_are_imported_only_where_the_page_says():
    misplaced = []
    for module, path in MODULES.items():
        for target in imports(path):
            service = target.split(".")[0]
            allowed = SERVICES.get(service)
            if allowed is not None and not any(
                module == a or module.startswith(f"{a}.") for a in allowed
            ):
                misplaced.append(f"{module} imports {target}")
    assert set(SERVICES) == {"ray", "submitit", "mlflow", "ffcv"}
    assert misplaced == []


def test_no_module_imports_itself_through_others():
    graph = {name: imports(path) & set(MODULES) for name, path in MODULES.items()}
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
