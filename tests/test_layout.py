"""The layers of ledger/ and gateway/: imports point down, and no module imports itself back.

The graph is read from the source with ``ast``: absolute and relative imports, and imports
inside functions or under ``TYPE_CHECKING`` count too (a circle for the type checker is a
circle for the reader). Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``;
that is not counted, so a package's ``__init__`` must only gather names from below it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module may import from its own layer and from any layer of a lower rank;
# layers of one rank (the command line and the gateway) may not import each other.
# "x.*" is the package x and everything under it; a bare name is that one module, so a new
# top-level module fails below until someone places it.
LAYERS: list[tuple[str, int, tuple[str, ...]]] = [
    ("base", 0, ("ledger.errors", "ledger.reasons", "ledger._types")),
    ("policy", 1, ("ledger.policy.*",)),
    ("store", 2, ("ledger.store.*",)),
    ("facade", 3, ("ledger.facade.*",)),
    # The archive on disk: the store below it, and nothing of the facade.
    ("audit", 3, ("ledger.audit.*",)),
    ("ops", 4, ("ledger.ops.*",)),
    # The public API: the package itself, and old module paths kept for callers.
    ("api", 5, ("ledger", "ledger.cancels", "ledger.durable")),
    ("cli", 6, ("ledger.cli.*", "ledger.run")),
    ("gateway", 6, ("gateway.*",)),
]

# Import edges left out of the circle check, each with the reason. An entry whose import
# is gone fails the test, so this list can only shrink. It is empty: no circle is allowed.
ALLOWED_EDGES: frozenset[tuple[str, str]] = frozenset()


def modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Every module of the given top-level packages under root, by dotted name."""
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _targets(node: ast.AST, importer: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of ``known`` that one import statement uses."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            # A package's own __init__ is its level-1 anchor; a module's is its parent.
            parts = importer.split(".") if is_package else importer.split(".")[:-1]
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        # from X import y: y is a submodule X.y if there is one, else a name defined in X.
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    else:
        return set()
    out = set()
    for name in names:
        # import a.b.c uses a.b.c; when c is not a module of ours, its nearest known parent.
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            out.add(name)
    return out


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the modules of the same packages it imports, anywhere in its source."""
    mods = modules(root, packages)
    known = set(mods)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(tree):
            edges |= _targets(node, name, is_package, known)
        edges.discard(name)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, each as one path through it back to its start.

    A group's other members are on further circles through the same start: fix the one shown
    and run again.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_path_through(graph, group) for group in groups]


def _path_through(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest circle inside one strongly connected group, for the failure message."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"not a circle: {sorted(group)}")


def layer_of(module: str) -> tuple[str, int] | None:
    """The layer a module belongs to, or None when no layer claims it."""
    for name, rank, members in LAYERS:
        for member in members:
            if member.endswith(".*"):
                package = member[:-2]
                if module == package or module.startswith(package + "."):
                    return name, rank
            elif module == member:
                return name, rank
    return None


def against_the_layers(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a higher layer, or between two layers of one rank, as readable lines."""
    out = []
    for importer in sorted(graph):
        here = layer_of(importer)
        assert here is not None
        for imported in sorted(graph[importer]):
            there = layer_of(imported)
            assert there is not None
            if there != here and there[1] >= here[1]:
                out.append(f"{importer} ({here[0]}) imports {imported} ({there[0]})")
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT, ("ledger", "gateway"))


def test_every_module_belongs_to_a_layer(graph: dict[str, set[str]]) -> None:
    unplaced = sorted(m for m in graph if layer_of(m) is None)
    assert unplaced == [], f"add these modules to a layer in LAYERS: {unplaced}"


def test_no_import_circles(graph: dict[str, set[str]]) -> None:
    pruned = {m: {t for t in ts if (m, t) not in ALLOWED_EDGES} for m, ts in graph.items()}
    found = [" -> ".join(c) for c in circles(pruned)]
    assert found == [], "import circles:\n" + "\n".join(found)


def test_allowed_edges_still_exist(graph: dict[str, set[str]]) -> None:
    gone = sorted(e for e in ALLOWED_EDGES if e[1] not in graph.get(e[0], set()))
    assert gone == [], f"these imports are gone: remove them from ALLOWED_EDGES: {gone}"


def test_imports_point_down_the_layers(graph: dict[str, set[str]]) -> None:
    wrong = against_the_layers(graph)
    assert wrong == [], "imports against the layers:\n" + "\n".join(wrong)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_graph_reads_every_form_of_import(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub.a import A\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/a.py": "from . import b\nfrom .c import C\nA = 1\n",
            "pkg/sub/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from ..top import T\n",
            "pkg/sub/c.py": "def f():\n    import pkg.sub.d as d\n    return d\nC = 1\n",
            "pkg/sub/d.py": "import os\nfrom pkg import other\nfrom pkg.sub import thing\n",
            "pkg/top.py": "T = 1\n",
        },
    )
    assert import_graph(root, ("pkg",)) == {
        "pkg": {"pkg.sub.a"},
        "pkg.sub": set(),
        "pkg.sub.a": {"pkg.sub.b", "pkg.sub.c"},
        "pkg.sub.b": {"pkg.top"},
        "pkg.sub.c": {"pkg.sub.d"},
        # names that are not modules: the package that defines them
        "pkg.sub.d": {"pkg", "pkg.sub"},
        "pkg.top": set(),
    }


def test_a_new_circle_fails(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import x\n",
        "pkg/b.py": "x = 1\n",
        "pkg/c.py": "from pkg import a\n",
    }
    assert circles(import_graph(_tree(tmp_path, files), ("pkg",))) == []
    # b now imports a back, under TYPE_CHECKING and relatively: still a circle
    (tmp_path / "pkg/b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\nx = 1\n"
    )
    assert circles(import_graph(tmp_path, ("pkg",))) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_an_import_up_the_layers_fails() -> None:
    graph = {
        "ledger.store.keys": {"ledger.policy.model", "ledger.facade.client"},
        "ledger.policy.model": {"ledger.errors"},
        "ledger.facade.client": {"ledger.store.keys"},
        "ledger.cli.token": {"gateway.auth"},
        "gateway.auth": {"ledger.store.tokens"},
        "ledger.store.tokens": set(),
        "ledger.errors": set(),
    }
    assert against_the_layers(graph) == [
        "ledger.cli.token (cli) imports gateway.auth (gateway)",
        "ledger.store.keys (store) imports ledger.facade.client (facade)",
    ]
    assert circles(graph) == [["ledger.facade.client", "ledger.store.keys", "ledger.facade.client"]]


@pytest.mark.parametrize(
    ("old_path", "names"),
    [
        ("ledger", ("Ledger", "Order", "Decision", "Policy", "Reason", "LedgerUnavailable")),
        ("ledger.policy", ("Policy", "Node", "KINDS", "load_policy_file", "parse_policy")),
        ("ledger.durable", ("NotDurable", "from_env", "Durability")),
        ("ledger.cancels", ("cancel_instructions", "CancelInstruction")),
    ],
)
def test_documented_import_paths_keep_working(old_path: str, names: tuple[str, ...]) -> None:
    module = importlib.import_module(old_path)
    missing = [n for n in (*names, *getattr(module, "__all__", ())) if not hasattr(module, n)]
    assert missing == []
