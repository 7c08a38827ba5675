"""The package tree's import rules: arrows point down, no cycles, no private names shared.

The layers, lowest first, are those of docs/architecture.md. A module may import from its own
subpackage and from any lower layer; never from a higher one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib" / "sonicatlas"

#: Lowest first. Modules of one layer do not import each other across packages.
LAYERS = [
    {"errors", "contract", "lazy"},
    {"config", "storage", "persisted"},
    {"deploy", "watch"},
    {"runtime", "estimators"},
    {"io", "synthetic", "evaluate"},
    {"modeling"},
    {"summaries"},
    {"visual"},
    {"listeners"},
    {"runs"},
    {"discover"},
    {"app"},
    {"cli"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def module_name(path: Path) -> str:
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` for every ``sonicatlas`` import in the file, relative ones resolved."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] == "sonicatlas":
                found.append((target, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] == "sonicatlas"]
    return found


def top_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


MODULES = {module_name(p): p for p in LIB.rglob("*.py")}


def test_every_top_level_module_and_package_has_a_layer():
    tops = {top_of(m) for m in MODULES} - {""}
    assert tops <= set(RANK), f"not in LAYERS: {sorted(tops - set(RANK))}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    here = top_of(module)
    if not here:  # the package root: lazy re-exports only, resolved on first use
        return
    for target, _ in imports_of(MODULES[module]):
        there = top_of(target)
        if not there or there == here:
            continue
        assert RANK[there] < RANK[here], f"{module} imports {target}, a layer at or above it"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_is_imported_from_another_module(module):
    for target, names in imports_of(MODULES[module]):
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{module} imports {private} from {target}"


def test_no_import_cycles():
    graph = {}
    for module, path in MODULES.items():
        edges = set()
        for target, names in imports_of(path):
            # "from package import module" is an edge to that module
            candidates = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            edges |= set(candidates) or ({target} & MODULES.keys())
        graph[module] = edges - {module}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_checks_see_a_violation(tmp_path):
    """The rules above would fail on a lower layer importing a higher one."""
    bad = tmp_path / "sonicatlas" / "estimators" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from sonicatlas.runs.directory import _private\n")
    (target, names), = imports_of_at(bad, tmp_path / "sonicatlas")
    assert RANK[top_of(target)] > RANK["estimators"] and names == ["_private"]


def imports_of_at(path: Path, lib: Path):
    global LIB
    saved, LIB = LIB, lib
    try:
        return imports_of(path)
    finally:
        LIB = saved
