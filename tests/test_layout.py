"""The package's shape: a folder per concept, a small top level, every public name reachable, no import circles."""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

import activemine

ROOT = pathlib.Path(activemine.__file__).parent
SUBPACKAGES = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file())
TOP_LEVEL = {"__init__", "__main__", "errors", "progress", "models", "metrics"}


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(modules: dict[str, pathlib.Path]) -> dict[str, set[str]]:
    """Module -> the activemine modules it imports, at the top or inside functions."""
    edges = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("activemine"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    target = sub if sub in modules else node.module
                    if target in modules and target != name:
                        edges[name].add(target)
            elif isinstance(node, ast.Import):
                edges[name].update(a.name for a in node.names if a.name in modules and a.name != name)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_module_imports_itself_through_others():
    cycle = _cycle(_imports(_modules()))
    assert cycle is None, " -> ".join(cycle)


def test_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_top_level_holds_only_what_every_folder_shares():
    top = {p.stem for p in ROOT.glob("*.py")}
    assert top == TOP_LEVEL


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_each_folder_says_what_it_owns_and_hands_on_its_public_names(package):
    module = importlib.import_module(f"activemine.{package}")
    assert module.__doc__ and module.__doc__.strip()
    names = getattr(module, "__all__", [])
    assert names, f"activemine.{package} hands on no names"
    for name in names:
        assert getattr(module, name) is not None, f"activemine.{package}.{name}"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_every_module_has_a_docstring(name):
    tree = ast.parse(_modules()[name].read_text())
    assert ast.get_docstring(tree), name


@pytest.mark.parametrize("name", activemine.__all__)
def test_every_top_level_public_name_resolves(name):
    assert getattr(activemine, name) is not None
