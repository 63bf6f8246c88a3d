"""lib's import graph, read from the source (AST: top-level and function-level imports alike).

The rules a layered package keeps (DESIGN.md): no import cycles, however late the import; imports point
down the layers (foundation, render, data, models, pretrained, guidance, methods); no private name
(``_x``) imported from another module; the index in ``lib/__init__.py`` names every top-level module
and package.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(LIB.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(LIB.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The lib module that ``name`` (a module, or a name inside one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path):
    """(line, module imported from, name or None) for every ``lib`` import in a file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "lib":
                    yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "lib":
            for alias in node.names:
                yield node.lineno, node.module, alias.name


def import_graph() -> dict:
    """{module: {modules it imports}}, each edge to the module that defines what is imported."""
    graph = {}
    for name, path in MODULES.items():
        targets = set()
        for _, module, imported in _imports(path):
            sub = _resolve(f"{module}.{imported}") if imported else None
            target = sub if sub and sub != _resolve(module) and sub.startswith(module + ".") else _resolve(module)
            if target and target not in (name, "lib"):
                targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_late_import_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, f"import cycles in lib (function-level imports count too): {found}"


def test_no_private_name_imported_across_modules():
    bad = [f"{_module_name(path)}:{line} imports {imported} from {module}"
           for path in MODULES.values() for line, module, imported in _imports(path)
           if imported and imported.startswith("_") and not imported.startswith("__")]
    assert not bad, "a private name is private to its module (make it public, or move the code): " + "; ".join(bad)


# lib's layers, lowest first: a module imports only from its own layer or a lower one. The foundation is
# every module at lib's top level; data and models may use each other's constants but data comes first
# (models read formats, e.g. a .ply of Gaussians); lib.colab sets up a runtime and stands apart.
LAYERS = ("foundation", "render", "data", "models", "pretrained", "guidance", "methods")


def layer(module: str) -> str:
    """The layer of a lib module: its package under lib, or the foundation for a top-level module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS + ("colab",)) else "foundation"


def test_layer_of_a_module():
    assert [layer(m) for m in ("lib.cameras", "lib.render.gaussians.sh", "lib.methods", "lib.colab.runner")] == \
        ["foundation", "render", "methods", "colab"]


def test_every_module_is_in_a_layer():
    assert {layer(m) for m in MODULES if m != "lib"} <= set(LAYERS) | {"colab"}


def test_imports_point_down_the_layers():
    graph = import_graph()
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = [f"{m} ({layer(m)}) -> {t} ({layer(t)})" for m, targets in sorted(graph.items()) for t in sorted(targets)
           if layer(m) != "colab" and (layer(t) == "colab" or rank[layer(t)] > rank[layer(m)])]
    assert not bad, f"imports that reach up a layer (move the shared code down, or the caller up): {bad}"


def test_colab_set_up_imports_only_the_foundation_and_itself():
    graph = import_graph()
    bad = [f"{m} -> {t}" for m, targets in graph.items() if layer(m) == "colab" for t in targets
           if layer(t) not in ("colab", "foundation")]
    assert not bad, f"lib.colab runs before anything else is installed: {bad}"


def test_the_layer_rule_catches_an_upward_import(monkeypatch):
    import test_lib_layers as this
    graph = import_graph()
    graph["lib.render.volume"] = graph["lib.render.volume"] | {"lib.methods.nerf"}
    monkeypatch.setattr(this, "import_graph", lambda: graph)
    with pytest.raises(AssertionError, match="lib.render.volume"):
        this.test_imports_point_down_the_layers()


def test_index_names_every_top_level_module():
    index = (LIB / "__init__.py").read_text()
    named = set(re.findall(r"``(lib\.[a-z_0-9]+)", index))
    top = {f"lib.{p.stem}" for p in LIB.glob("*.py") if p.stem != "__init__"}
    top |= {f"lib.{p.parent.name}" for p in LIB.glob("*/__init__.py")}
    assert top - named == set(), f"lib/__init__.py's index does not name {sorted(top - named)}"
    assert named - top == set(), f"lib/__init__.py's index names modules that do not exist: {sorted(named - top)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_has_a_docstring(name):
    assert ast.get_docstring(ast.parse(MODULES[name].read_text())), f"{MODULES[name]}: no module docstring"


def _environment_reads(path: Path):
    """(line, variable) of every ``os.environ[...]``, ``os.environ.get(...)`` and ``os.getenv(...)`` in
    a file; a variable named by a module-level string constant is resolved to its value."""
    tree = ast.parse(path.read_text(), str(path))
    constants = {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for t in node.targets if isinstance(t, ast.Name)}

    def name(arg):
        if isinstance(arg, ast.Constant):
            return arg.value
        return constants.get(arg.id, f"<{arg.id}>") if isinstance(arg, ast.Name) else f"<{ast.unparse(arg)}>"

    for node in ast.walk(tree):
        environ = lambda n: isinstance(n, ast.Attribute) and n.attr == "environ" and ast.unparse(n.value) == "os"
        if isinstance(node, ast.Subscript) and environ(node.value):
            yield node.lineno, name(node.slice)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args and (
                (node.func.attr == "get" and environ(node.func.value))
                or (node.func.attr == "getenv" and ast.unparse(node.func.value) == "os")):
            yield node.lineno, name(node.args[0])


def test_environment_is_read_only_where_the_index_says():
    index = (LIB / "__init__.py").read_text()
    listed = dict(re.findall(r"^- ``([A-Z0-9_]+)`` \(``(lib[a-z_.0-9]*)``\)", index, re.M))
    reads = {(name, variable) for name, path in MODULES.items() for _, variable in _environment_reads(path)}
    assert reads, "found no environment reads at all: the scan is broken"
    unlisted = sorted(f"{v} in {m}" for m, v in reads if listed.get(v) != m)
    assert not unlisted, f"environment reads that lib/__init__.py's list does not name (or names elsewhere): {unlisted}"
    stale = sorted(set(listed.items()) - {(v, m) for m, v in reads})
    assert not stale, f"lib/__init__.py lists environment reads that no longer exist: {stale}"

