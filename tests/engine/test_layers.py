"""The engine's layers point one way: every import goes down the table, and nothing is circular.

The imports are read from the source (ast), all of them: module level, inside functions and
under `if TYPE_CHECKING:`, since a type-only arrow still ties two modules together. The same
table is README's "Layers" section; a test below keeps the two equal.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "engine"

#: Layer -> the modules in it ("sockets" stands for engine/sockets/*, and so on).
LAYERS: dict[int, tuple[str, ...]] = {
    0: (
        "constants",
        "errors",
        "error",
        "options",
        "accept_rules",
        "endpoint",
        "multicast_address",
        "native",
    ),
    1: ("zmtp", "zmtp_handshake", "frame_runs", "pipe", "security", "pgm", "udp_datagram"),
    2: ("sockets",),
    3: ("transport",),
    4: ("context",),
    5: (
        "face",
        "face_draft",
        "face_endpoint",
        "face_frame",
        "face_options",
        "face_recv",
        "face_serial",
        "face_monitor",
        "face_context",
        "polling",
        "waiting",
    ),
    6: ("sync", "iothread", "asyncio"),
    7: ("poll", "devices", "decorators", "log", "utils", "auth", "__init__"),
    8: ("patterns",),
}
#: What the patterns (L8) may use: the public API only.
PUBLIC = {
    "engine",
    "engine.asyncio",
    "engine.constants",
    "engine.error",
    "engine.errors",
    "engine.devices",
    "engine.utils",
    "engine.utils.monitor",
}

LAYER_OF = {name: layer for layer, names in LAYERS.items() for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(module: str) -> bool:
    path = ROOT / Path(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports_of(path: Path) -> set[str]:
    """Every engine module `path` imports, wherever the import statement stands."""
    return imports_in(path.read_text(), module_name(path), path.name == "__init__.py")


def imports_in(source: str, me: str, is_init: bool) -> set[str]:
    package = me if is_init else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from pkg import name` imports pkg.name when that is a module, else pkg.
            subs = [f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}")]
            found.update(subs or [target])
            if subs and len(subs) < len(node.names):
                found.add(target)
    return {m for m in found if m == "engine" or m.startswith("engine.")} - {me}


def layer_of(module: str) -> int:
    parts = module.split(".")
    key = "__init__" if len(parts) == 1 else parts[1]
    if key not in LAYER_OF:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and to README")
    return LAYER_OF[key]


@functools.cache
def graph() -> dict[str, set[str]]:
    modules = sorted(ENGINE.rglob("*.py"))
    return {module_name(p): imports_of(p) for p in modules}


def test_every_module_has_a_layer() -> None:
    for module in graph():
        layer_of(module)


def test_every_arrow_points_down() -> None:
    upward = [
        f"{src} (L{layer_of(src)}) -> {dst} (L{layer_of(dst)})"
        for src, targets in graph().items()
        for dst in sorted(targets)
        if layer_of(dst) > layer_of(src)
    ]
    assert not upward, "imports that point up the layer table:\n" + "\n".join(upward)


def test_patterns_use_only_the_public_api() -> None:
    private = [
        f"{src} -> {dst}"
        for src, targets in graph().items()
        if layer_of(src) == 8
        for dst in sorted(targets)
        if dst not in PUBLIC and not dst.startswith("engine.patterns")
    ]
    assert not private, "patterns reaching past the public API:\n" + "\n".join(private)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_catch_what_they_are_for() -> None:
    """The cycle finder and the layer lookup fail on what they must (so the tests above can)."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("engine.pipe") < layer_of("engine.sockets.base") < layer_of("engine.sync")
    with pytest.raises(AssertionError):
        layer_of("engine.not_a_module")
    # Imports under TYPE_CHECKING and inside functions are arrows too.
    src = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..sync import Socket\n"
        "def f():\n    from .. import constants as c\n"
    )
    found = imports_in(src, "engine.transport.link", is_init=False)
    assert found == {"engine.sync", "engine.constants"}


def test_readme_states_the_same_table() -> None:
    """README's "Layers" section lists each layer's modules as LAYERS does."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Layers", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| L(\d) \| ([^|]+) \|", section, flags=re.MULTILINE)
    assert rows, "README's Layers section has no table"
    stated = {
        int(layer): {
            m.strip("` /").removeprefix("engine/").removesuffix(".py") for m in cell.split(",")
        }
        for layer, cell in rows
    }
    assert stated == {layer: set(names) for layer, names in LAYERS.items()}
