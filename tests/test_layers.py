"""The library stays layered: each package of src/visual_search imports only packages of lower layers
(lazy imports inside functions and type-checking imports count too), no two packages import each other,
and no task imports another task."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "visual_search"
# Lowest first: a package may import the packages of the layers before its own, never its own layer's.
LAYERS = [
    ["errors"],
    ["utils"],
    ["data"],
    ["encode"],
    ["detect"],
    ["embed", "reduce", "index", "metrics"],
    ["search"],
    ["pipeline", "training"],
    ["evaluation"],
    ["serving"],
    ["tasks"],
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    """`visual_search.<...>` of a file under src/ (a package's `__init__.py` is the package)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every `visual_search...` name the code of `module` imports, wherever the import statement stands
    (`from pkg import name` counts as importing `pkg` and `pkg.name`)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:  # relative: against the package the module lives in
                base = module.split(".")[: len(module.split(".")) - node.level + is_package]
                name = ".".join([*base, *([node.module] if node.module else [])])
            found |= {name, *(f"{name}.{alias.name}" for alias in node.names)}
    return {name for name in found if name.startswith("visual_search.")}


def file_imports(path: Path) -> set[str]:
    return imported_modules(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def package_of(module: str) -> str | None:
    """The top-level package (or module) of `visual_search.<name>...` when it exists; else None."""
    parts = module.split(".")
    if len(parts) < 2 or not ((PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").is_file()):
        return None
    return parts[1]


def package_imports() -> dict[str, dict[str, set[str]]]:
    """package -> imported package -> the files (relative paths) that import it."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in sorted(PACKAGE.rglob("*.py")):
        source = package_of(module_name(path))
        for target in {package_of(module) for module in file_imports(path)} - {None, source}:
            if source is not None:
                graph[source][target].add(str(path.relative_to(PACKAGE)))
    return graph


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    assert packages | modules == set(LAYER), "add new packages to LAYERS"


def test_packages_import_only_lower_layers():
    upward = [
        f"{source} ({LAYER[source]}) imports {target} ({LAYER[target]}): {', '.join(sorted(files))}"
        for source, targets in package_imports().items()
        for target, files in targets.items()
        if LAYER[target] >= LAYER[source]
    ]
    assert not upward, "\n".join(upward)


def test_no_two_packages_import_each_other():
    graph = {source: set(targets) for source, targets in package_imports().items()}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif len(path) < len(graph) + 1:
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, "\n".join(sorted(set(cycles)))


def test_no_task_imports_another_task():
    tasks = {path.stem for path in (PACKAGE / "tasks").glob("*.py") if path.name != "__init__.py"}
    crossing = [
        f"tasks/{path.name} imports {module}"
        for path in (PACKAGE / "tasks").glob("*.py")
        for module in file_imports(path)
        if module.startswith("visual_search.tasks.") and module.split(".")[2] in tasks - {path.stem}
    ]
    assert not crossing, "\n".join(crossing)


@pytest.mark.parametrize(
    ("code", "module", "expected"),
    [
        ("import visual_search.data.items", "visual_search.embed.cache", {"visual_search.data.items"}),
        (
            "def f():\n    from visual_search.index import milvus",
            "visual_search.data.items",
            {"visual_search.index", "visual_search.index.milvus"},
        ),
        (
            "if TYPE_CHECKING:\n    from visual_search.serving.app import Served",
            "visual_search.data.items",
            {"visual_search.serving.app", "visual_search.serving.app.Served"},
        ),
        (
            "from ..index import milvus",
            "visual_search.detect.base",
            {"visual_search.index", "visual_search.index.milvus"},
        ),
        (
            "from . import crop",
            "visual_search.detect.base",
            {"visual_search.detect", "visual_search.detect.crop"},
        ),
        ("import numpy", "visual_search.data.items", set()),
    ],
)
def test_imports_are_found_wherever_they_stand(code, module, expected):
    assert imported_modules(code, module) == expected
    assert {package_of(name) for name in expected} <= set(LAYER)
