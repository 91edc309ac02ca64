"""Check hfselect's architecture: one-way layers, no import cycle, SQL only in the store, small modules.

    python tools/check_architecture.py        # prints every violation, exit 1 if any

Every ``import`` of an hfselect module counts, at module level or inside a function (an import
inside a function hides a cycle, it does not remove it). ``tests/test_architecture.py`` runs the
same checks.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hfselect"
MAX_LINES = 600
# A database call, or a statement in a string: either means SQL outside the store.
SQL_CALL = re.compile(r"\b(execute|executemany|executescript|read_sql(_query)?|transaction|query)\(")
SQL_TEXT = re.compile(r"[\"']\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA)\s")

# Lowest first. A module may import modules of its own layer or of a lower one, never a higher one.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "hfselect._version",
        "hfselect.errors",
        "hfselect.validation",
        "hfselect.config",
        "hfselect.specs",
        "hfselect.logs",
    ),
    ("hfselect.core",),
    ("hfselect.store", "hfselect.data", "hfselect.models", "hfselect.zoo", "hfselect.hub.client"),
    (
        "hfselect.hub",
        "hfselect.training",
        "hfselect.cards",
        "hfselect.callbacks",
        "hfselect.starters",
    ),
    ("hfselect.api", "hfselect.demo", "hfselect"),
    ("hfselect.cli", "hfselect.__main__"),
)


def module_name(path: Path) -> str:
    """The dotted name of a file of the package (``hfselect/store/__init__.py`` -> ``hfselect.store``)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The hfselect modules that a file imports, anywhere in it."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from hfselect.store import studies` imports a module; `from hfselect.store import X` a name.
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [name if name in modules else node.module for name in names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name.startswith("hfselect"):
                yield name


def layer_of(module: str) -> int:
    """The index in LAYERS of the most specific prefix matching ``module``."""
    best, best_length = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            # The root package ("hfselect", the public API) matches only itself.
            nested = prefix != "hfselect" and module.startswith(prefix + ".")
            if (module == prefix or nested) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    return best


def import_graph() -> dict[str, set[str]]:
    """Module -> the hfselect modules it imports (a package's ``__init__`` is left out as a target
    when the import names a submodule)."""
    modules = package_modules()
    return {name: set(imported_modules(path, modules)) - {name} for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def violations() -> list[str]:
    """Every broken rule, one line each."""
    problems = []
    graph = import_graph()
    for module, targets in sorted(graph.items()):
        if layer_of(module) < 0:
            problems.append(f"layer: {module} belongs to no layer in tools/check_architecture.py")
        for target in sorted(targets):
            if layer_of(module) >= 0 and layer_of(target) > layer_of(module):
                problems.append(f"layer: {module} imports {target}, a higher layer")
    for component in find_cycles(graph):
        problems.append(f"cycle: {' <-> '.join(component)}")
    for name, path in package_modules().items():
        text = path.read_text()
        lines = text.count("\n")
        if lines > MAX_LINES:
            problems.append(f"size: {path.relative_to(PACKAGE.parent)} has {lines} lines (> {MAX_LINES})")
        if not name.startswith("hfselect.store") and (SQL_CALL.search(text) or SQL_TEXT.search(text)):
            problems.append(f"sql: {path.relative_to(PACKAGE.parent)} uses SQL outside hfselect.store")
    return problems


def main() -> int:
    """Print the violations; exit 1 if there are any."""
    problems = violations()
    for problem in problems:
        print(problem)
    print(f"{len(problems)} violation(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
