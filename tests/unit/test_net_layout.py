"""How `net` is laid out: it takes settings as arguments (the dataclasses of
`reaper_lsp.settings`, never the config loader), and only `net/httpcore_internals.py` touches
httpx's and httpcore's private attributes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NET = Path(__file__).resolve().parents[2] / "reaper_lsp" / "net"
INTERNALS = "httpcore_internals.py"
PRIVATE = {"_pool", "_transport", "_connection", "_h2_state", "_write_outgoing_data",
           "_expire_at", "_keepalive_expiry", "_stream_id", "_request", "_closed"}  # fmt: skip
"""httpx/httpcore private names; reached on `self` they are our own attributes."""

MODULES = sorted(p.name for p in NET.glob("*.py"))


def _tree(name: str) -> ast.AST:
    return ast.parse((NET / name).read_text(encoding="utf-8"))


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("name", MODULES)
def test_net_never_imports_the_config_loader(name: str) -> None:
    loader = {n for n in _imported(_tree(name)) if n.startswith("reaper_lsp.config")}
    assert not loader, f"net/{name} imports {loader}; take reaper_lsp.settings dataclasses"


@pytest.mark.parametrize("name", [m for m in MODULES if m != INTERNALS])
def test_only_httpcore_internals_touches_httpcore_privates(name: str) -> None:
    tree = _tree(name)
    private_modules = {n for n in _imported(tree) if n.startswith(("httpcore._", "httpx._"))}
    assert not private_modules, f"net/{name} imports {private_modules}"
    reached = sorted(
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in PRIVATE
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    )
    reached += sorted(
        f"line {node.lineno}: {node.func.id}(..., {node.args[1].value!r})"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "hasattr", "setattr")
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and node.args[1].value in PRIVATE
    )
    assert not reached, f"net/{name} reaches into httpcore: {reached}"
