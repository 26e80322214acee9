"""The layout is the architecture, and these fitness functions keep it so.

Read from the source with the AST, every import counts, at module level or inside a
function: an import deferred into a function to dodge a cycle is still a cycle.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ["core", "desk", "inventory", "migration", "cutover", "training", "dicomnet", "sync"]
PROJECT = ["commandcenter"]
DEV_ONLY = "devstack"


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def production_files(package):
    return [
        p
        for p in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in p.parts and "__pycache__" not in p.parts
    ]


def imported_modules(path):
    """Every module `path` imports, resolved to dotted names (`from a import b` gives
    both `a` and `a.b`, since `b` may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def graph_of(package):
    modules = {module_name(p): p for p in production_files(package)}
    return {
        name: sorted({m for m in imported_modules(path) if m in modules and m != name})
        for name, path in modules.items()
    }


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_and_nothing_else():
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert cycles({"a": ["b"], "b": [], "c": ["a"]}) == []


@pytest.mark.parametrize("package", APPS + PROJECT)
def test_no_app_imports_itself_in_a_circle(package):
    assert cycles(graph_of(package)) == []


@pytest.mark.parametrize("package", APPS + PROJECT)
def test_production_code_imports_nothing_from_the_developer_stack(package):
    offenders = sorted(
        f"{module_name(path)} imports {name}"
        for path in production_files(package)
        for name in set(imported_modules(path))
        if name == DEV_ONLY or name.startswith(DEV_ONLY + ".")
    )
    assert offenders == []


def test_the_project_package_holds_only_the_project():
    names = {p.name for p in (ROOT / "commandcenter").iterdir() if p.suffix == ".py"}
    assert names == {"__init__.py", "settings.py", "urls.py", "asgi.py", "celery.py", "routing.py"}
