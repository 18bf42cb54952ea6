"""The layer rules of DESIGN.md, read from every module's imports (lazy and type-only imports
included: a module that reads another's attributes depends on it): a request walks one way,
and no two modules depend on each other."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "reaper_lsp"
MAX_LINES = 450
MAX_TOP_LEVEL = 6


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


ALL = modules()


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (lazy imports inside functions included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def ours(names: set[str]) -> set[str]:
    return {n for n in names if n == "reaper_lsp" or n.startswith("reaper_lsp.")}


def depends_on(module: str) -> set[str]:
    """Our modules `module` imports (`from a import b` is `a.b` when that is a module)."""
    found = set()
    for name in ours(imports(ALL[module])):
        if name in ALL:
            found.add(name)
        elif name.rpartition(".")[0] in ALL:
            found.add(name.rpartition(".")[0])
    found.discard(module)
    return found


def in_layer(name: str, layer: str) -> bool:
    return name == layer or name.startswith(layer + ".")


def of_layer(layer: str) -> list[str]:
    return [m for m in ALL if in_layer(m, f"reaper_lsp.{layer}")]


def third_party(module: str) -> set[str]:
    return {n.split(".")[0] for n in imports(ALL[module])}


@pytest.mark.parametrize("module", of_layer("core"))
def test_core_imports_only_the_standard_library_cachetools_and_core(module: str) -> None:
    allowed_third_party = {"cachetools"}
    for name in imports(ALL[module]):
        top = name.split(".")[0]
        if top == "reaper_lsp":
            assert in_layer(name, "reaper_lsp.core"), f"{module} imports {name}"
        elif top != "__future__":
            assert top in sys.stdlib_module_names or top in allowed_third_party, (
                f"{module} imports {name}"
            )


@pytest.mark.parametrize("module", of_layer("net"))
def test_net_imports_nothing_above_it_nor_the_config_loader(module: str) -> None:
    for name in ours(imports(ALL[module])):
        for layer in ("providers", "auth", "services", "lsp", "cli", "daemon", "config"):
            assert not in_layer(name, f"reaper_lsp.{layer}"), f"{module} imports {name}"


@pytest.mark.parametrize("module", of_layer("auth"))
def test_auth_imports_neither_providers_nor_anything_above(module: str) -> None:
    for name in ours(imports(ALL[module])):
        for layer in ("providers", "services", "lsp", "cli", "daemon"):
            assert not in_layer(name, f"reaper_lsp.{layer}"), f"{module} imports {name}"


@pytest.mark.parametrize("module", of_layer("providers"))
def test_providers_never_import_the_services_or_the_edges(module: str) -> None:
    for name in ours(imports(ALL[module])):
        for layer in ("services", "lsp", "cli", "daemon"):
            assert not in_layer(name, f"reaper_lsp.{layer}"), f"{module} imports {name}"


@pytest.mark.parametrize("module", of_layer("lsp"))
def test_lsp_translates_only(module: str) -> None:
    """The LSP layer never reaches the network, credentials or back ends: only services."""
    assert not third_party(module) & {"httpx", "httpcore", "h2", "aioquic"}, module
    for name in ours(imports(ALL[module])):
        for layer in ("net", "auth", "providers", "cli", "daemon"):
            assert not in_layer(name, f"reaper_lsp.{layer}"), f"{module} imports {name}"


@pytest.mark.parametrize("module", of_layer("services"))
def test_services_speak_core_types_not_lsp(module: str) -> None:
    assert not third_party(module) & {"pygls", "lsprotocol"}, module
    for name in ours(imports(ALL[module])):
        for layer in ("lsp", "cli", "daemon"):
            assert not in_layer(name, f"reaper_lsp.{layer}"), f"{module} imports {name}"


@pytest.mark.parametrize("module", [m for m in ALL if not in_layer(m, "reaper_lsp.cli")])
def test_only_the_cli_and_main_import_the_cli(module: str) -> None:
    if module == "reaper_lsp.__main__":
        return
    for name in ours(imports(ALL[module])):
        assert not in_layer(name, "reaper_lsp.cli"), f"{module} imports {name}"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each as the modules on it (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_type_only_imports_included() -> None:
    assert cycles({m: depends_on(m) for m in ALL}) == []


def test_the_top_level_keeps_at_most_six_modules() -> None:
    top = [m for m in ALL if m.count(".") == 1 and ALL[m].name != "__init__.py"]
    top.append("reaper_lsp")  # __init__
    assert len(top) <= MAX_TOP_LEVEL, sorted(top)


@pytest.mark.parametrize("module", list(ALL))
def test_no_module_is_over_the_size_limit(module: str) -> None:
    lines = len(ALL[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines"


def test_the_rules_would_catch_a_breach(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from reaper_lsp.services.app import App\n"
        "def f():\n    from reaper_lsp.providers.base import Provider\n"
    )
    found = ours(imports(bad))
    assert {"reaper_lsp.providers.base", "reaper_lsp.services.app"} <= found
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
