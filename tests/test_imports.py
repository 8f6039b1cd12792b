"""The import graph of ``app/`` and ``cam_core/``: no cycle, counting every import statement anywhere in a file
(function-level and ``TYPE_CHECKING`` ones included), and the library never imports the app or Gradio."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "cam_core")


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of :data:`PACKAGES` under ``root`` by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """The dotted names an ``import`` / ``from ... import`` statement names (each imported name may be a module)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: from the module's package, up level - 1
            package = module.split(".") if is_package else module.split(".")[:-1]
            base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
        yield base
        yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """``module -> the modules it imports`` within :data:`PACKAGES`; an import of a top package itself (``import
    cam_core``, ``from app import texts``'s ``app``) is not an edge from inside it (the name's module is)."""
    found = modules(root)

    def resolve(name: str) -> str | None:
        while name and name not in found:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in found}
    for name, path in found.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _imported(node, name, path.name == "__init__.py"):
                resolved = resolve(target)
                if resolved and resolved != name and not (resolved in PACKAGES and name.startswith(resolved + ".")):
                    graph[name].add(resolved)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_is_read_from_every_import_statement() -> None:
    """The reader sees function-level, ``TYPE_CHECKING`` and relative imports (a cycle of those breaks nothing at
    import time, but it is still a cycle for the reader and the design)."""
    graph = import_graph()
    assert "app.events" in graph["app.page"] and "app.tabs.compare" in graph["app.page"]
    assert "cam_core.train.checkpoint" in graph["cam_core.evaluate.cli"]  # imported inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_app_or_the_library() -> None:
    assert cycles(import_graph()) == []


def test_the_library_never_imports_the_app() -> None:
    graph = import_graph()
    assert {(m, i) for m, imports in graph.items() if m.startswith("cam_core") for i in imports
            if i.startswith("app")} == set()  # fmt: skip
