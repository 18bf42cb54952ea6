"""The layer rules of DESIGN.md, read from every module's imports: a request walks one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "reaper_lsp"
MAX_LINES = 450


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


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


def in_layer(name: str, layer: str) -> bool:
    return name == layer or name.startswith(layer + ".")


ALL = modules()


@pytest.mark.parametrize("module", [m for m in ALL if in_layer(m, "reaper_lsp.core")])
def test_core_imports_only_the_standard_library_cachetools_and_core(module: str) -> None:
    import sys

    allowed_third_party = {"cachetools"}
    for name in imports(ALL[module]):
        top = name.split(".")[0]
        if top == "reaper_lsp":
            assert in_layer(name, "reaper_lsp.core"), f"{module} imports {name}"
        elif top != "__future__":
            assert top in sys.stdlib_module_names or top in allowed_third_party, (
                f"{module} imports {name}"
            )


@pytest.mark.parametrize("module", [m for m in ALL if in_layer(m, "reaper_lsp.net")])
def test_net_imports_nothing_above_it(module: str) -> None:
    for name in ours(imports(ALL[module])):
        for layer in ("providers", "auth", "server", "app", "completion", "chat", "status"):
            assert not in_layer(name, f"reaper_lsp.{layer}"), f"{module} imports {name}"


@pytest.mark.parametrize("module", [m for m in ALL if in_layer(m, "reaper_lsp.providers")])
def test_providers_never_import_the_server_or_the_services(module: str) -> None:
    for name in ours(imports(ALL[module])):
        for layer in ("server", "app", "completion", "chat", "status", "cli"):
            assert not in_layer(name, f"reaper_lsp.{layer}"), f"{module} imports {name}"


@pytest.mark.parametrize("module", [m for m in ALL if m not in ("reaper_lsp.cli",)])
def test_only_the_cli_imports_the_server(module: str) -> None:
    if module == "reaper_lsp.lsp.server":
        return
    for name in ours(imports(ALL[module])):
        assert not in_layer(name, "reaper_lsp.lsp.server"), f"{module} imports {name}"


@pytest.mark.parametrize("module", list(ALL))
def test_no_module_is_over_the_size_limit(module: str) -> None:
    lines = len(ALL[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines"


def test_the_rules_would_catch_a_breach(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from reaper_lsp.providers.base import Provider\n")
    assert "reaper_lsp.providers.base" in ours(imports(bad))
