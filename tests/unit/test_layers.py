"""The house rules for imports, checked on the source (ast), so they hold before anything is run.

* No import cycle among the project's modules, counting imports inside functions: a lazy import
  still ties the two modules together, it only hides the knot until a call. Imports under
  `if TYPE_CHECKING:` never run, so they make no cycle (a service handing itself to its API object
  may name its type); they still count for the layer rules below.
* hostwatch.core is the leaf: it imports nothing else of the project.
* A sibling package (runtime, exporter, logshipper, alerting, dashboards) imports itself and
  hostwatch.core only: never the face (hostwatch.cli, hostwatch.up, hostwatch.__main__), never
  another sibling. The face may import everything; it is the composition root.
* A few modules of one package must not reach others of it (FORBIDDEN): the long-lived monitor
  loads nothing of the CLI verbs.

An edge goes to the most specific module an import names: `from pkg import mod` is an edge to
pkg.mod when that is a module, else to pkg. Importing pkg.mod also runs pkg/__init__.py, but
counting that would make every package whose __init__ re-exports its modules a "cycle".
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("hostwatch", "runtime", "exporter", "logshipper", "alerting", "dashboards")
CORE = "hostwatch.core"
FACE_PACKAGE = "hostwatch"  # hostwatch.* outside hostwatch.core is the face
FORBIDDEN = (("runtime.monitor", "runtime.manage"), ("runtime.monitor", "runtime.command"))


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    type_only: bool = False  # under `if TYPE_CHECKING:`

    def where(self, root: Path, files: dict[str, Path]) -> str:
        return f"{files[self.source].relative_to(root)}:{self.line}"


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the packages (a package is its __init__)."""
    out: dict[str, Path] = {}
    for pkg in packages:
        base = root / pkg
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` refers to: itself, or the nearest enclosing module that exists."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _package_of(module: str, files: dict[str, Path]) -> str:
    return module if files[module].name == "__init__.py" else module.rpartition(".")[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node below `node`, each with whether it sits under `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        yield child, type_only
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield stmt, True
                yield from _walk(stmt, True)
            for stmt in child.orelse:
                yield stmt, type_only
                yield from _walk(stmt, type_only)
        else:
            yield from _walk(child, type_only)


def imports(module: str, files: dict[str, Path]) -> list[Edge]:
    """Every import of a project module anywhere in `module` (top level, functions, if-blocks)."""
    tree = ast.parse(files[module].read_text(), str(files[module]))
    edges: list[Edge] = []
    for node, type_only in _walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(module, files).split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{alias.name}" for alias in node.names]
        for name in targets:
            target = _resolve(name, files)
            if target is not None and target != module:
                edges.append(Edge(module, target, node.lineno, type_only))
    return edges


def _cycles(graph: dict[str, list[Edge]]) -> list[list[Edge]]:
    """One cycle (as its edges) per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for e in graph[v]:
            if e.target not in index:
                visit(e.target)
                low[v] = min(low[v], low[e.target])
            elif e.target in on_stack:
                low[v] = min(low[v], index[e.target])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_a_cycle_in(comp, graph) for comp in components]


def _a_cycle_in(comp: set[str], graph: dict[str, list[Edge]]) -> list[Edge]:
    """The shortest cycle through the component's first module (breadth-first inside the component)."""
    start = min(comp)
    came: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for e in graph[v]:
                if e.target not in comp:
                    continue
                if e.target == start:
                    path = [e]
                    while path[0].source != start:
                        path.insert(0, came[path[0].source])
                    return path
                if e.target not in came:
                    came[e.target] = e
                    nxt.append(e.target)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {sorted(comp)}")  # Tarjan said there is one


def _reaches(graph: dict[str, list[Edge]], source: str, target: str) -> list[Edge] | None:
    came: dict[str, Edge] = {}
    frontier, seen = [source], {source}
    while frontier:
        nxt = []
        for v in frontier:
            for e in graph.get(v, []):
                if e.target in seen:
                    continue
                seen.add(e.target)
                came[e.target] = e
                if e.target == target:
                    path = [e]
                    while path[0].source != source:
                        path.insert(0, came[path[0].source])
                    return path
                nxt.append(e.target)
        frontier = nxt
    return None


def _layer(module: str) -> str:
    """"core", "face", or the sibling package's name."""
    if module == CORE or module.startswith(CORE + "."):
        return "core"
    top = module.split(".")[0]
    return "face" if top == FACE_PACKAGE else top


def problems(root: Path, packages: tuple[str, ...] = PACKAGES,
             forbidden: tuple[tuple[str, str], ...] = FORBIDDEN) -> list[str]:
    """Every broken rule, one line each, naming the modules and where the import is."""
    files = module_files(root, packages)
    graph = {m: imports(m, files) for m in files}
    runtime_graph = {m: [e for e in edges if not e.type_only] for m, edges in graph.items()}
    out: list[str] = []
    for cycle in _cycles(runtime_graph):
        chain = " -> ".join([cycle[0].source, *(e.target for e in cycle)])
        out.append(f"import cycle: {chain} ({', '.join(e.where(root, files) for e in cycle)})")
    for module in sorted(graph):
        layer = _layer(module)
        for e in graph[module]:
            to = _layer(e.target)
            if layer == "face" or to == layer or (to == "core" and layer != "core"):
                continue
            why = ("hostwatch.core must import no other part of the project" if layer == "core"
                   else f"{layer} may import only itself and hostwatch.core")
            out.append(f"layer violation: {module} imports {e.target} ({e.where(root, files)}): {why}")
    for source, target in forbidden:
        path = _reaches(runtime_graph, source, target) if source in graph else None
        if path:
            chain = " -> ".join([source, *(e.target for e in path)])
            out.append(f"forbidden import: {chain} ({', '.join(e.where(root, files) for e in path)})")
    return out


def test_the_project_has_no_import_cycle_and_keeps_its_layers() -> None:
    found = problems(REPO)
    assert not found, "\n".join(found)


def test_the_check_sees_every_package() -> None:
    files = module_files(REPO, PACKAGES)
    assert {m.split(".")[0] for m in files} == set(PACKAGES)
    assert {"hostwatch.cli", "hostwatch.core.paths", "runtime.monitor", "exporter.scrape"} <= set(files)


def _tree(root: Path, sources: dict[str, str]) -> None:
    for rel, text in sources.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_finds_cycles_layer_violations_and_forbidden_paths(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "hostwatch/__init__.py": "",
        "hostwatch/cli.py": "import runtime.a\nimport exporter.x\n",  # the face may
        "hostwatch/core/__init__.py": "",
        "hostwatch/core/paths.py": "def f() -> None:\n    from runtime import a\n",  # core reaching up
        "runtime/__init__.py": "",
        "runtime/a.py": "from runtime.b import thing\n",
        "runtime/b.py": "def g() -> None:\n    from . import a\n",  # lazy, still a cycle
        "runtime/monitor.py": "from runtime import c\n",
        "runtime/c.py": "from .manage import x\n",
        "runtime/manage.py": "from hostwatch.core import paths\n",  # fine
        "exporter/__init__.py": "",
        "exporter/x.py": "import os\nfrom hostwatch.cli import main\nif True:\n    import runtime.a.sub\n",
        "exporter/y.py": "import typing\nif typing.TYPE_CHECKING:\n    from runtime.b import B\n",  # types too
    })
    found = problems(tmp_path, ("hostwatch", "runtime", "exporter"), (("runtime.monitor", "runtime.manage"),))
    assert sorted(found) == sorted([
        "import cycle: runtime.a -> runtime.b -> runtime.a (runtime/a.py:1, runtime/b.py:2)",
        "import cycle: exporter.x -> hostwatch.cli -> exporter.x (exporter/x.py:2, hostwatch/cli.py:2)",
        "layer violation: exporter.x imports hostwatch.cli (exporter/x.py:2): "
        "exporter may import only itself and hostwatch.core",
        "layer violation: exporter.x imports runtime.a (exporter/x.py:4): "
        "exporter may import only itself and hostwatch.core",
        "layer violation: exporter.y imports runtime.b (exporter/y.py:3): "
        "exporter may import only itself and hostwatch.core",
        "layer violation: hostwatch.core.paths imports runtime.a (hostwatch/core/paths.py:2): "
        "hostwatch.core must import no other part of the project",
        "forbidden import: runtime.monitor -> runtime.c -> runtime.manage (runtime/monitor.py:1, runtime/c.py:1)",
    ]), "\n".join(found)


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "hostwatch/__init__.py": "",
        "hostwatch/cli.py": "from runtime import a\n",
        "hostwatch/core/__init__.py": "from hostwatch.core import units\n",
        "hostwatch/core/units.py": "import json\n",
        "runtime/__init__.py": "from runtime.a import A\n",  # re-exports: not a cycle with runtime.a
        "runtime/a.py": "from hostwatch.core.units import json\nfrom runtime import b\nA = 1\n",
        "runtime/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from runtime.a import A\n",
    })
    assert problems(tmp_path, ("hostwatch", "runtime")) == []  # runtime.b -> runtime.a only for types
