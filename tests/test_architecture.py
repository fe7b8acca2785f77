"""The import graph of ``src/comorbid``: no cycles, and no module imports the CLI.

How the graph is built (module granularity, read with :mod:`ast`, nothing is imported):

- A node is a module: ``comorbid/x/y.py`` is ``comorbid.x.y``, ``comorbid/x/__init__.py`` is
  the package ``comorbid.x``.
- ``import a.b`` is an edge to ``a.b``; ``from a.b import c`` is an edge to the module
  ``a.b.c`` when there is one, else to ``a.b`` (``c`` is defined or re-exported there).
  Relative imports are resolved against the importing module's package.
- Importing ``a.b.c`` runs the ``__init__`` of ``a.b`` first, so it is also an edge to the
  package ``a.b`` -- unless the importing module lives inside ``a.b`` (that ``__init__`` is
  already running, or done, by then: the usual package layout, ``from pkg import sibling``,
  is not a cycle). So ``evaluation -> report.stats`` meets ``report/__init__ -> evaluation``,
  and a submodule that takes a *name* from its own package's ``__init__`` (a registry
  lookup) is an edge to that ``__init__``.
- Function-level (lazy) imports are edges too. A lazy import only moves the moment an import
  cycle bites (to the first call, where it is harder to see) and hides a dependency; it does
  not remove the dependency. Layering is the point here, so every import statement counts,
  wherever it stands. (There are no ``if TYPE_CHECKING:`` imports in the package; if one is
  added it counts too, for the same reason.)

A cycle kept on purpose would be listed in :data:`KNOWN_CYCLES` with its reason (none is);
any other fails the test with its path, e.g. ``comorbid.cli -> comorbid.demo -> comorbid.cli``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "comorbid"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE


def module_names(source: Path = SOURCE) -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    names = {}
    for path in sorted(source.rglob("*.py")):
        parts = list(path.relative_to(source.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` (at ``path``) imports, anywhere in its body."""
    package = name if _is_package(path) else name.rpartition(".")[0]
    edges: set[str] = set()

    def add(target: str, *, runs_init: bool = True) -> None:
        """An edge to ``target`` and to the packages whose ``__init__`` importing it runs."""
        if target not in modules:
            return
        parts = target.split(".")
        for end in range(2, len(parts) + 1):
            parent = ".".join(parts[:end])
            inside = name == parent or name.startswith(parent + ".")
            if parent == target or (runs_init and not inside):
                edges.add(parent)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:  # a submodule: `from pkg import sub`
                    add(f"{source}.{alias.name}")
                else:  # a name defined (or re-exported) by `source` itself
                    add(source)
    edges.discard(name)
    return edges


def import_graph(source: Path = SOURCE) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over every module of the package."""
    modules = module_names(source)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component that has one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan (1972); the package is small, recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_through(graph, component) for component in components]


def _cycle_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component (BFS)."""
    members, start = set(component), component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & members):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert "comorbid.cli" in graph and "comorbid.decoders" in graph
    assert "comorbid.decoders.base" in graph["comorbid.decoders"]
    assert "comorbid.model" in graph["comorbid.cli"]


#: Cycles left on purpose, each with its reason (path tuple -> reason). None today; keep it so.
KNOWN_CYCLES: dict[tuple[str, ...], str] = {}


def test_no_import_cycles():
    cycles = {tuple(cycle) for cycle in find_cycles(import_graph())}
    new = sorted(cycles - set(KNOWN_CYCLES))
    assert not new, "import cycles among comorbid modules:\n" + "\n".join(" -> ".join(c) for c in new)
    stale = sorted(set(KNOWN_CYCLES) - cycles)
    assert not stale, f"KNOWN_CYCLES lists cycles that are gone (remove them): {stale}"


def test_no_module_imports_the_cli():
    importers = sorted(name for name, targets in import_graph().items() if "comorbid.cli" in targets
                       and name not in ("comorbid.cli", "comorbid.__main__"))
    assert not importers, f"no module imports the CLI (comorbid.cli), but {', '.join(importers)} do(es)"


@pytest.mark.parametrize(
    "graph, cycle",
    [
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": set()}, None),
    ],
)
def test_find_cycles_reports_the_path(graph, cycle):
    assert find_cycles(graph) == ([cycle] if cycle else [])


def test_relative_and_lazy_imports_are_edges(tmp_path):
    package = tmp_path / "comorbid"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .one import f\n")
    (package / "sub" / "one.py").write_text("def f():\n    from ..top import g\n")
    (package / "top.py").write_text("from comorbid.sub.one import f\n")
    graph = import_graph(package)
    assert graph["comorbid.sub"] == {"comorbid.sub.one"}
    assert graph["comorbid.sub.one"] == {"comorbid.top"}
    assert graph["comorbid.top"] == {"comorbid.sub", "comorbid.sub.one"}  # sub/__init__ runs first
    assert find_cycles(graph) == [["comorbid.sub", "comorbid.sub.one", "comorbid.top", "comorbid.sub"]]
