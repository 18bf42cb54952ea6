"""The workspace: URI ⇄ path, roots, relative paths, languages — and the one place that reads
files from disk.

Every read goes through `read_regular_file`: the file must be a regular file (never a device,
FIFO, socket, or anything under /dev, /proc or /sys, even through a symlink), and no more than a
fixed number of bytes is read. Documents the editor has not opened are read only inside the
workspace roots, so a request naming `file:///proc/self/environ` or `~/.ssh/id_rsa` sends nothing
upstream.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from reaper_lsp.core.document import Document, DocumentStore

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
"""Unopened files larger than this are not read for a completion or a chat."""
_SYSTEM_TREES = ("/dev", "/proc", "/sys", "/run")
_VCS_MARKERS = (".git", ".hg", ".svn", ".jj")
_PROJECT_MARKERS = (
    "pyproject.toml", "setup.py", "setup.cfg", "package.json", "Cargo.toml", "go.mod",
    "pom.xml", "build.gradle", "build.gradle.kts", "Gemfile", "composer.json", "mix.exs",
    "CMakeLists.txt",
)  # fmt: skip

_EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript",
    ".cjs": "javascript", ".ts": "typescript", ".tsx": "typescriptreact",
    ".jsx": "javascriptreact", ".rs": "rust", ".go": "go", ".c": "c", ".h": "c", ".cpp": "cpp",
    ".cc": "cpp", ".hpp": "cpp", ".java": "java", ".rb": "ruby", ".lua": "lua",
    ".sh": "shellscript", ".bash": "shellscript", ".md": "markdown", ".toml": "toml",
    ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".html": "html", ".css": "css",
    ".kt": "kotlin", ".swift": "swift", ".php": "php", ".cs": "csharp", ".zig": "zig",
    ".hs": "haskell", ".ex": "elixir", ".exs": "elixir", ".sql": "sql", ".vim": "vim",
    ".el": "emacs-lisp", ".scala": "scala", ".dart": "dart", ".r": "r", ".jl": "julia",
}  # fmt: skip


def uri_to_path(uri: str) -> Path | None:
    """The local path of a `file:` URI, None for any other scheme."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def language_of(path: Path) -> str:
    """The LSP language id for a file name (`plaintext` when unknown)."""
    return _EXTENSIONS.get(path.suffix.lower(), "plaintext")


def _in_system_tree(path: str) -> bool:
    return any(path == tree or path.startswith(tree + "/") for tree in _SYSTEM_TREES)


def read_regular_file(path: Path, max_bytes: int, *, whole: bool = False) -> bytes | None:
    """At most `max_bytes` of `path` when it is a regular file outside /dev, /proc, /sys and
    /run (symlinks resolved first), else None — also when `whole` and the file is larger than
    `max_bytes`. Never blocks on a FIFO or a device: the file is
    opened non-blocking and checked on the open descriptor, so a swap after the check cannot
    slip a device in."""
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return None
    if _in_system_tree(real):
        log.info("not reading %s: a system path", path)
        return None
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            log.info("not reading %s: not a regular file", path)
            return None
        if whole and info.st_size > max_bytes:
            log.info("not reading %s: larger than %d bytes", path, max_bytes)
            return None
        chunks: list[bytes] = []
        left = max_bytes
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_text_file(path: Path, max_bytes: int, *, whole: bool = False) -> str | None:
    """`read_regular_file` decoded as UTF-8 (bad bytes replaced)."""
    data = read_regular_file(path, max_bytes, whole=whole)
    return None if data is None else data.decode("utf-8", errors="replace")


def project_root(file: Path) -> Path:
    """The project an absolute `file` belongs to (what the terminal commands take as the
    workspace): its version-control root, else the nearest folder with a project file, else
    the file's folder. Never the current directory: run from / or a home folder, that is
    thousands of unrelated files."""
    for markers in (_VCS_MARKERS, _PROJECT_MARKERS):
        for folder in file.parents:
            if any((folder / marker).exists() for marker in markers):
                return folder
    return file.parent


class Workspace:
    """The folders the editor opened and the documents it has open."""

    def __init__(self, roots: Sequence[Path] = (), documents: DocumentStore | None = None):
        self.roots = [Path(os.path.abspath(root)) for root in roots]
        self.documents = documents if documents is not None else DocumentStore()

    def inside(self, path: Path) -> bool:
        real = Path(os.path.realpath(path))
        return any(real == root or root in real.parents for root in self._real_roots())

    def _real_roots(self) -> list[Path]:
        return [Path(os.path.realpath(root)) for root in self.roots]

    def relative_path(self, uri: str) -> str:
        """The path a prompt names the document by: relative to its root when inside one."""
        path = uri_to_path(uri)
        if path is None:
            return urlparse(uri).path.rsplit("/", 1)[-1] or uri
        for root in self.roots:
            try:
                return path.relative_to(root).as_posix()
            except ValueError:
                continue
        return path.name

    async def document(self, uri: str) -> Document | None:
        """An open document, or — for a `file:` URI inside a workspace root that the editor has
        not opened — the file on disk, read in a worker thread."""
        doc = self.documents.get(uri)
        if doc is not None:
            return doc
        path = uri_to_path(uri)
        if path is None:
            return None
        if not self.inside(path):
            log.warning("not reading %s: outside the workspace and not open in the editor", uri)
            return None
        text = await asyncio.to_thread(read_text_file, path, MAX_DOCUMENT_BYTES, whole=True)
        return None if text is None else Document(uri, language_of(path), 0, text)
