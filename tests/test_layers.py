"""The layering of codexgw, pinned: every import of every module, read with ``ast``.

Layers, top to bottom (a module may import its own package, any layer below its own, and, within
its layer, only the pairs of :data:`SAME_LAYER`)::

    __main__
    cli
    serve                                  the composition root
    dashboard                              the web pages over the admin API (mounted by serve)
    api                                    the HTTP edge
    upstream                               carries out decisions: gateway state, failover, streams
    auth                                   login flows with I/O
    client, store                          httpx plumbing; the SQLite store (never each other)
    translate, pool, oauth, policy, status the sans-IO cores
    config, errors, metrics, codexgw       leaves (``codexgw`` is the package's __init__: __version__)

Three rules, each a test below:

(a) the cores import no I/O library (:data:`IO_MODULES`: sockets, files, clocks, trio, httpx,
    sqlite3 …) and no codexgw module above the cores;
(b) every import between codexgw modules runs down the layers (or is an allowed same-layer pair);
(c) no import cycle between codexgw modules.

Every import counts: module-level, inside functions, under ``if TYPE_CHECKING``, relative ones. A
package new under ``codexgw/`` fails (b) until it is given a layer here; modules new inside a
package are covered by their package's rules. The checkers are tested on planted violations too,
so these tests cannot pass by finding nothing.

``status`` (the ``/status`` document, pure functions over plain data) sits with the cores because
it renders ``pool.health.eligible``; leaves import no codexgw module at all.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import codexgw

ROOT = Path(codexgw.__file__).parent

LAYERS: list[frozenset[str]] = [
    frozenset({"__main__"}),
    frozenset({"cli"}),
    frozenset({"serve"}),
    frozenset({"dashboard"}),
    frozenset({"api"}),
    frozenset({"upstream"}),
    frozenset({"auth"}),
    frozenset({"client", "store"}),
    frozenset({"translate", "pool", "oauth", "policy", "status"}),
    frozenset({"config", "errors", "metrics", "codexgw"}),
]
"""Top to bottom. A name is a package under ``codexgw/`` or a module directly in it."""

SAME_LAYER: dict[tuple[str, str], str] = {
    ("status", "pool"): "the /status document says which accounts are usable with pool.health.eligible",
    ("pool", "translate"): "a failover decision (issue 11's pool/failover.py) reads translate's "
    "classified upstream failure",
    ("policy", "translate"): "the teams policy (issue 12) caps the reasoning efforts translate knows "
    "and reads its reasoning display modes",
}
"""The imports allowed inside one layer, importer first, each with its reason. ``client`` and
``store`` import each other nowhere today, and may not."""

CORES = ("translate", "pool", "oauth", "policy", "status")
"""Sans-IO: they take data and return data; time comes in as ``now`` arguments."""

# fmt: off
IO_MODULES = frozenset({
    "trio", "anyio", "asyncio", "threading", "subprocess",                 # concurrency
    "socket", "ssl", "select", "selectors",                                 # sockets
    "httpx", "httpcore", "h11", "h2", "http.client", "urllib.request",      # HTTP clients
    "quart", "quart_trio", "hypercorn",                                     # the server stack
    "sqlite3", "os", "pathlib", "shutil", "tempfile",                       # database and files
    "time",                                                                 # the clock
})
# fmt: on
"""What the cores may not import (a name or any submodule of it): sockets, files, clocks, threads,
the async and HTTP stacks, the database."""


# -- reading imports -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One imported name as written: ``module`` (dotted, absolute), and the imported ``name`` for
    ``from module import name`` (``None`` for ``import module``), at ``line``."""

    module: str
    name: str | None
    line: int


def read_imports(source: str, module: str, *, is_package: bool = False) -> list[Import]:
    """Every import statement of ``source`` (the module called ``module``), at any depth."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found += [Import(target, alias.name, node.lineno) for alias in node.names]
    return found


@dataclass(frozen=True)
class Module:
    """A codexgw module: its dotted name, its layer name (``part``), its file and its imports."""

    name: str
    part: str
    path: Path
    imports: list[Import]


def part_of(name: str) -> str:
    """``codexgw.api.chat`` → ``api``; ``codexgw.serve`` → ``serve``; ``codexgw`` → ``codexgw``."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def scan(root: Path = ROOT) -> dict[str, Module]:
    """Every ``*.py`` under ``root`` (the codexgw package), by dotted name."""
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        is_package = rel.name == "__init__"
        name = ".".join(rel.parts[:-1] if is_package else rel.parts)
        imports = read_imports(path.read_text(encoding="utf-8"), name, is_package=is_package)
        modules[name] = Module(name, part_of(name), path, imports)
    return modules


def resolve(imp: Import, known: set[str]) -> str:
    """The module an import loads: ``from pkg import mod`` is ``pkg.mod`` when that is a module."""
    if imp.name is not None and f"{imp.module}.{imp.name}" in known:
        return f"{imp.module}.{imp.name}"
    return imp.module


def graph(modules: dict[str, Module]) -> dict[str, dict[str, int]]:
    """codexgw module → {codexgw module it imports → first line}, without self-imports."""
    known = set(modules)
    edges: dict[str, dict[str, int]] = {}
    for module in modules.values():
        out = edges.setdefault(module.name, {})
        for imp in module.imports:
            target = resolve(imp, known)
            if target.split(".")[0] == "codexgw" and target != module.name:
                out.setdefault(target, imp.line)
    return edges


# -- the rules -------------------------------------------------------------------------------------


def rank(part: str, layers: list[frozenset[str]] = LAYERS) -> int | None:
    """The layer index of ``part`` (0 is the top), ``None`` when it has none."""
    return next((i for i, layer in enumerate(layers) if part in layer), None)


def layer_violations(
    edges: dict[str, dict[str, int]],
    layers: list[frozenset[str]] = LAYERS,
    same_layer: dict[tuple[str, str], str] = SAME_LAYER,
) -> list[str]:
    """Rule (b): one line per import that does not run down the layers (or has no layer)."""
    problems: list[str] = []
    for source, targets in sorted(edges.items()):
        a = part_of(source)
        ra = rank(a, layers)
        if ra is None:
            problems.append(f"{source}: codexgw.{a} has no layer; add it to LAYERS in tests/test_layers.py")
            continue
        for target, line in sorted(targets.items()):
            b = part_of(target)
            rb = rank(b, layers)
            if a == b:
                continue
            if rb is None:
                problems.append(f"{source}:{line} imports {target}, which has no layer")
            elif rb < ra:
                problems.append(f"{source}:{line} imports {target}: {b} is above {a}")
            elif rb == ra and (a, b) not in same_layer:
                problems.append(f"{source}:{line} imports {target}: {a} and {b} share a layer")
    return problems


def io_violations(module: Module, forbidden: frozenset[str] = IO_MODULES) -> list[str]:
    """Rule (a), libraries: one line per import of a forbidden module (or of its submodules)."""
    problems = []
    for imp in module.imports:
        for dotted in filter(None, (imp.module, imp.name and f"{imp.module}.{imp.name}")):
            hit = next((f for f in forbidden if dotted == f or dotted.startswith(f + ".")), None)
            if hit:
                problems.append(f"{module.name}:{imp.line} imports {dotted} ({hit})")
                break
    return problems


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Rule (c): the import cycles, as one example loop (``[a, b, …, a]``) per strongly connected
    component of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, {}))))]
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
                    work.append((child, iter(sorted(edges.get(child, {})))))
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
                    found.append(_loop(sorted(component), edges))
    return found


def _loop(component: list[str], edges: dict[str, dict[str, int]]) -> list[str]:
    """A path from the component's first module back to itself, inside the component."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(edges.get(node, {})):
            if child == start:
                return [*paths[node], start]
            if child in members and child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    return component  # unreachable for a strongly connected component


# -- the tree --------------------------------------------------------------------------------------

MODULES = scan()
EDGES = graph(MODULES)


def test_the_scan_sees_the_whole_package() -> None:
    parts = {m.part for m in MODULES.values()}
    assert {"cli", "serve", "api", "upstream", "auth", "client", "store", *CORES, "config"} <= parts
    assert len(MODULES) > 60
    assert "codexgw.cli.scheduling" in EDGES["codexgw.cli.main"]  # `from codexgw.cli import scheduling`
    assert (
        "codexgw.store" in EDGES["codexgw.cli.common"]
    )  # inside a function, `from codexgw.store import Store`


@pytest.mark.parametrize("core", CORES)
def test_cores_are_sans_io(core: str) -> None:
    """Rule (a): no I/O library, and no codexgw module above the cores."""
    modules = [m for m in MODULES.values() if m.part == core]
    assert modules, f"no module of {core}"
    problems = [p for m in modules for p in io_violations(m)]
    floor = rank(core)
    assert floor is not None
    for m in modules:
        for target, line in EDGES[m.name].items():
            above = rank(part_of(target))
            if above is None or above < floor:
                problems.append(f"{m.name}:{line} imports {target}, above the cores")
    assert not problems, "\n".join(problems)


def test_every_import_runs_down_the_layers() -> None:
    """Rule (b)."""
    problems = layer_violations(EDGES)
    assert not problems, "\n".join(problems)


def test_no_import_cycles() -> None:
    """Rule (c)."""
    loops = cycles(EDGES)
    assert not loops, "\n".join(" -> ".join(loop) for loop in loops)


def test_same_layer_pairs_are_in_one_layer() -> None:
    for a, b in SAME_LAYER:
        assert rank(a) is not None and rank(a) == rank(b), (a, b)


# -- the checkers find what they must (planted violations) ------------------------------------------

PLANTED = """
from __future__ import annotations
import os.path
from typing import TYPE_CHECKING
from . import sibling
from .. import errors
from ..api.chat import relay

if TYPE_CHECKING:
    from codexgw.store import Store

def later():
    import trio
    from urllib import request
"""


def test_read_imports_sees_every_kind() -> None:
    found = {(i.module, i.name) for i in read_imports(PLANTED, "codexgw.pool.planted")}
    assert {
        ("os.path", None),
        ("codexgw.pool", "sibling"),
        ("codexgw", "errors"),
        ("codexgw.api.chat", "relay"),
        ("codexgw.store", "Store"),
        ("trio", None),
        ("urllib", "request"),
    } <= found
    in_package = read_imports("from . import a", "codexgw.pool", is_package=True)
    assert [(i.module, i.name) for i in in_package] == [("codexgw.pool", "a")]


def test_io_violations_catch_libraries_at_any_depth() -> None:
    module = Module(
        "codexgw.pool.planted", "pool", Path("planted.py"), read_imports(PLANTED, "codexgw.pool.planted")
    )
    problems = io_violations(module)
    assert [p.split(" ", 1)[0] for p in problems] == [
        "codexgw.pool.planted:3",
        "codexgw.pool.planted:13",
        "codexgw.pool.planted:14",
    ]
    clean = Module(
        "m", "pool", Path("m.py"), read_imports("import math\nfrom urllib.parse import quote", "m")
    )
    assert io_violations(clean) == []


def test_layer_violations_catch_upward_sideways_and_unknown() -> None:
    edges = {
        "codexgw.pool.a": {"codexgw.api.chat": 3, "codexgw.errors": 4, "codexgw.pool.b": 5},
        "codexgw.client.x": {"codexgw.store.sqlite": 7},
        "codexgw.status": {"codexgw.pool.health": 8},
        "codexgw.oauth.t": {"codexgw.pool.health": 9},
        "codexgw.newpkg.m": {"codexgw.errors": 1},
        "codexgw.api.chat": {"codexgw.upstream.gateway": 2, "codexgw.nowhere": 6},
    }
    assert layer_violations(edges) == [
        "codexgw.api.chat:6 imports codexgw.nowhere, which has no layer",
        "codexgw.client.x:7 imports codexgw.store.sqlite: client and store share a layer",
        "codexgw.newpkg.m: codexgw.newpkg has no layer; add it to LAYERS in tests/test_layers.py",
        "codexgw.oauth.t:9 imports codexgw.pool.health: oauth and pool share a layer",
        "codexgw.pool.a:3 imports codexgw.api.chat: api is above pool",
    ]


def test_cycles_are_found_and_shown_as_loops() -> None:
    edges = {
        "codexgw.a": {"codexgw.b": 1},
        "codexgw.b": {"codexgw.c": 1, "codexgw.d": 1},
        "codexgw.c": {"codexgw.a": 1},
        "codexgw.d": {},
        "codexgw.e": {"codexgw.f": 1},
        "codexgw.f": {"codexgw.e": 1},
    }
    assert cycles(edges) == [
        ["codexgw.a", "codexgw.b", "codexgw.c", "codexgw.a"],
        ["codexgw.e", "codexgw.f", "codexgw.e"],
    ]
    assert cycles({"codexgw.a": {"codexgw.b": 1}, "codexgw.b": {}}) == []
