"""The application's packages only point down, and none of their modules import each other in a
circle.

The layers, top to bottom (a package may use any package below it, none beside or above it):

    crossroads (the shell: the CLI's dispatch, compose-local)
    loadtest
    client, relay
    gameserver
    engine

Imports are read from the source (``ast``), so every kind counts: module-level, inside
functions, under ``TYPE_CHECKING``. So do modules named by string: an argument of
``importlib.import_module``, the word after ``-m`` in an argument list, and any string that is
exactly a dotted module name of these packages (a dispatch table's entry, say).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Package -> layer; a package may only depend on packages with a lower number.
LAYERS = {"engine": 0, "gameserver": 1, "client": 2, "relay": 2, "loadtest": 3, "crossroads": 4}


def module_files() -> dict[str, Path]:
    """Every module of the layered packages, by dotted name (a package by its own name)."""
    modules: dict[str, Path] = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = module_files()


def resolve(name: str) -> str | None:
    """The longest known module that ``name`` is, or lies in (``a.b.C`` -> ``a.b``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, node.module] if node.module else base)


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _named_by_string(node: ast.AST) -> Iterator[str]:
    """Module names given as strings: import_module("x"), [..., "-m", "x", ...], "a.b"."""
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        first = _text(node.args[0])
        if called in ("import_module", "__import__") and first is not None:
            yield first
    if isinstance(node, ast.List | ast.Tuple):
        for flag, value in itertools.pairwise(node.elts):
            if _text(flag) == "-m" and (name := _text(value)) is not None:
                yield name
    text = _text(node)
    if text is not None and "." in text and text in MODULES:
        yield text


def imports_of(module: str) -> set[str]:
    """The modules of the layered packages that ``module`` uses, by any of the means above."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            # `from pkg import sub` imports the module pkg.sub when there is one.
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        names += list(_named_by_string(node))
        for name in names:
            target = resolve(name)
            if target is not None and target != module:
                found.add(target)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def package(module: str) -> str:
    return module.partition(".")[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
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


def test_every_package_is_found() -> None:
    assert {package(m) for m in MODULES} == set(LAYERS)
    assert "crossroads.cli" in MODULES and "client.session" in MODULES


def test_packages_only_point_down() -> None:
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if package(target) != package(module) and LAYERS[package(target)] >= LAYERS[package(module)]
    )
    assert upward == [], "imports that point up or sideways:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    # The engine's own structure is its business (and its own tests'); it imports none of these.
    app = {m: {t for t in ts if package(t) != "engine"} for m, ts in GRAPH.items()}
    found = cycles({m: ts for m, ts in app.items() if package(m) != "engine"})
    assert found == [], "modules that import each other in a circle:\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_cycle_finder(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(graph) == expected


def test_the_reader_sees_every_kind_of_reference(tmp_path: Path) -> None:
    """The checks above can fail: each way of naming a module is noticed."""
    source = """
from typing import TYPE_CHECKING
import importlib
if TYPE_CHECKING:
    from client.view import RoomView
def late():
    from relay import cli
TABLE = {"x": "loadtest.runner"}
CMD = ["python", "-m", "crossroads", "serve"]
importlib.import_module("engine.zmtp")
"""
    name = "gameserver._probe"
    MODULES[name] = tmp_path / "_probe.py"
    MODULES[name].write_text(source)
    try:
        seen = imports_of(name)
    finally:
        del MODULES[name]
    assert {"client.view", "relay.cli", "loadtest.runner", "crossroads", "engine.zmtp"} <= seen
