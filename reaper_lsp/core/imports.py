"""The workspace files a source file's imports may name, as candidate paths relative to the
workspace root: the caller checks which exist and reads them (the core does no I/O).

Imports are found by pattern, not parsed: the buffer being edited rarely parses. Each import
gives its candidates most likely first, and the lists are interleaved — every import's best
guess, then every second guess — so that a cap drops unlikely guesses, never whole imports.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from itertools import zip_longest
from posixpath import basename, dirname, join, normpath, splitext

from reaper_lsp.core.symbols import family

MAX_TARGETS = 32

# Python -----------------------------------------------------------------------------------

_PY_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#;]+)", re.M)
_PY_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)", re.M)
_NAME = re.compile(r"[^\W\d]\w*")


def _python(text: str, current: str) -> list[list[str]]:
    here = dirname(current)
    found: list[list[str]] = []
    for match in _PY_IMPORT.finditer(text):
        for part in match.group(1).split(","):
            module = part.split(" as ")[0].strip()
            if module:
                found.append(_python_module(module, [], here, current))
    for match in _PY_FROM.finditer(text):
        dots, module, names = match.groups()
        listed = [
            part.split(" as ")[0].strip()
            for line in names.strip("()").splitlines()
            for part in line.split("#")[0].split(",")
        ]
        names_ = [n for n in listed if _NAME.fullmatch(n)]
        if dots:  # one folder up per extra dot; above the workspace root is dropped later
            base = normpath(join(here, *[".."] * (len(dots) - 1)))
            found.append(_python_relative(base, module, names_))
        elif module:
            found.append(_python_module(module, names_, here, current))
    return found


def _python_module(module: str, names: list[str], here: str, current: str) -> list[str]:
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top == "__future__":
        return []
    out: list[str] = []
    for root in _python_roots(top, here, current):
        out += _python_relative(root, module.replace(".", "/"), names, dotted=False)
    return out


def _python_roots(top: str, here: str, current: str) -> list[str]:
    """Where a top-level package may live: above any folder of the current path that bears
    its name (a `src/` layout, a monorepo's sub-project), the workspace root, `src/`, and the
    current folder (scripts import their neighbours)."""
    parts = current.split("/")[:-1]
    roots = ["/".join(parts[:i]) for i in range(len(parts) - 1, -1, -1) if parts[i] == top]
    return list(dict.fromkeys([*roots, "", "src", here]))


def _python_relative(base: str, module: str, names: list[str], *, dotted: bool = True) -> list[str]:
    path = module.replace(".", "/") if dotted else module
    package = join(base, path) if path else base
    out = [f"{package}.py", f"{package}/__init__.py"] if path else []
    for name in names:  # `from pkg import mod` may name a module as well as a definition
        out += [f"{package}/{name}.py", f"{package}/{name}/__init__.py"]
    if not path:
        out.append(f"{package}/__init__.py")
    return out


# JavaScript / TypeScript ------------------------------------------------------------------

_JS_SPECIFIER = re.compile(
    r"""(?:\b(?:import|export)\b[^'"`;]*?\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)"""
    r"""['"](\.{1,2}/[^'"]*)['"]"""
)
_JS_MAPPED = {
    ".js": (".js", ".ts", ".tsx"),
    ".jsx": (".jsx", ".tsx"),
    ".mjs": (".mjs", ".mts"),
    ".cjs": (".cjs", ".cts"),
}
"""TypeScript's ESM imports name the compiled file: `./x.js` is `./x.ts` in the sources."""
_JS_AS_IS = {".ts", ".tsx", ".mts", ".cts", ".vue", ".svelte"}
_NOT_CODE = {
    ".css", ".scss", ".sass", ".less", ".svg", ".png", ".jpg", ".jpeg", ".gif", ".webp",
    ".json", ".html", ".md", ".wasm", ".txt",
}  # fmt: skip
_TS_FIRST = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs")
_JS_FIRST = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx")


def _javascript(text: str, current: str) -> list[list[str]]:
    typescript = splitext(current)[1] in {".ts", ".tsx", ".mts", ".cts"}
    order = _TS_FIRST if typescript else _JS_FIRST
    found: list[list[str]] = []
    for match in _JS_SPECIFIER.finditer(text):
        base = normpath(join(dirname(current), match.group(1)))
        stem, ext = splitext(base)
        if ext in _NOT_CODE:
            continue
        if ext in _JS_MAPPED:
            found.append([stem + e for e in _JS_MAPPED[ext]])
        elif ext in _JS_AS_IS:
            found.append([base])
        else:  # no extension, or a dotted name such as `./user.service`
            found.append([base + e for e in order] + [f"{base}/index{e}" for e in order])
    return found


# Go ---------------------------------------------------------------------------------------

_GO_BLOCK = re.compile(r"^import[ \t]*\(([^)]*)\)", re.M)
_GO_SINGLE = re.compile(r'^import[ \t]+(?:[\w.]+[ \t]+)?"([^"]+)"', re.M)
_GO_PATH = re.compile(r'"([^"]+)"')


def _go(text: str, module: str, module_dir: str) -> list[list[str]]:
    paths = [m.group(1) for m in _GO_SINGLE.finditer(text)]
    for block in _GO_BLOCK.finditer(text):
        paths += _GO_PATH.findall(block.group(1))
    found: list[list[str]] = []
    for path in paths:
        if module and (path == module or path.startswith(module + "/")):
            folder = normpath(join(module_dir, path[len(module) + 1 :]))
            found.append([folder + "/"])  # a package is a folder: the caller lists its files
    return found


# Rust -------------------------------------------------------------------------------------

_RUST_MOD = re.compile(r"^[ \t]*(?:pub(?:\([^)]*\))?[ \t]+)?mod[ \t]+(\w+)[ \t]*;", re.M)
_RUST_USE = re.compile(r"^[ \t]*(?:pub(?:\([^)]*\))?[ \t]+)?use[ \t]+([^;]+);", re.M)


def _rust(text: str, current: str) -> list[list[str]]:
    root, module = _rust_module(current)
    declared = _RUST_MOD.findall(text)
    found = [_rust_files(root, [*module, name]) for name in declared]
    for match in _RUST_USE.finditer(text):
        for path in _use_paths(match.group(1)):
            resolved = _rust_resolve(path, module, declared)
            if resolved is not None:
                found.append(_rust_candidates(root, resolved))
    return found


def _rust_module(current: str) -> tuple[str, list[str]]:
    """The crate's source folder and the module path of the current file in it."""
    parts = current.split("/")
    if "src" in parts[:-1]:
        at = len(parts) - 1 - parts[::-1].index("src")
        root, rel = "/".join(parts[: at + 1]), parts[at + 1 :]
    else:
        root, rel = dirname(current), [basename(current)]
    folders, name = rel[:-1], rel[-1]
    if name in ("lib.rs", "main.rs") and not folders:
        return root, []
    if name == "mod.rs":
        return root, folders
    return root, [*folders, splitext(name)[0]]


def _use_paths(tree: str) -> list[list[str]]:
    """`a::{b, c::{D, e as f}}` -> [a, b], [a, c, D], [a, c, e]."""
    tree = " ".join(tree.split())
    if "{" not in tree:
        path = tree.split(" as ")[0].strip()
        return [[s for s in path.split("::") if s and s != "*"]]
    prefix, _, rest = tree.partition("{")
    head = [s for s in prefix.split("::") if s.strip()]
    out: list[list[str]] = []
    for part in _split_top(rest[: rest.rfind("}")]):
        for sub in _use_paths(part):
            out.append(head if sub == ["self"] else head + sub)
    return out


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for at, char in enumerate(text):
        depth += (char == "{") - (char == "}")
        if char == "," and depth == 0:
            parts.append(text[start:at])
            start = at + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def _rust_resolve(path: list[str], module: list[str], declared: list[str]) -> list[str] | None:
    """A `use` path as a path from the crate root; None for other crates."""
    if not path:
        return None
    if path[0] == "crate":
        return path[1:]
    if path[0] in ("self", "super"):
        base = list(module)
        rest = path[1:] if path[0] == "self" else path
        while rest and rest[0] == "super":
            base = base[:-1]
            rest = rest[1:]
        return base + rest
    if path[0] in declared:  # a module declared here, named without `self::`
        return [*module, *path]
    return None


def _rust_candidates(root: str, path: list[str]) -> list[str]:
    """Files that may define `path`: the module it names, then its parents. A last segment
    in CamelCase or CAPS is an item, not a module."""
    if path and not path[-1][:1].islower():
        path = path[:-1]
    out: list[str] = []
    for end in range(len(path), 0, -1):
        out += _rust_files(root, path[:end])
    return out or [f"{root}/lib.rs", f"{root}/main.rs"]


def _rust_files(root: str, module: list[str]) -> list[str]:
    folder = "/".join([root, *module]) if root else "/".join(module)
    return [f"{folder}.rs", f"{folder}/mod.rs"]


# All --------------------------------------------------------------------------------------


def import_targets(
    language: str,
    text: str,
    current_path: str,
    *,
    go_module: str = "",
    go_module_dir: str = "",
    limit: int = MAX_TARGETS,
) -> list[str]:
    """Workspace-relative paths the imports of `text` (the file at `current_path`) may name,
    best guesses first, `limit` at most. A path ending in "/" is a folder (a Go package:
    the caller reads its .go files). `go_module`: the module path declared in go.mod, which
    sits in `go_module_dir`; without it Go imports name nothing here. Standard-library and
    third-party imports name nothing; neither do paths leaving the workspace."""
    kind = family(language, current_path)
    current = normpath(current_path)
    if kind == "python":
        found = _python(text, current)
    elif kind == "js":
        found = _javascript(text, current)
    elif kind == "go":
        found = _go(text, go_module, go_module_dir)
    elif kind == "rust":
        found = _rust(text, current)
    else:
        return []
    return _interleave(found, current, limit)


def _interleave(found: list[list[str]], current: str, limit: int) -> list[str]:
    out: dict[str, None] = {}
    ranks: Iterable[tuple[str | None, ...]] = zip_longest(*found)
    for rank in ranks:
        for path in rank:
            if len(out) >= limit:
                return list(out)
            if path is None:
                continue
            folder = path.endswith("/")
            clean = normpath(path)
            if clean == ".." or clean.startswith(("../", "/")) or clean == current:
                continue
            out[clean + "/" if folder else clean] = None
    return list(out)
