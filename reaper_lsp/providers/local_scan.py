"""Reading the workspace for the offline engine: a breadth-first walk of the roots that skips
hidden, vendored, built and .gitignored paths, and prepares each file's index source within
file-count, byte, entry and time budgets. Runs in a worker thread; the index itself is only
touched by the caller (`LocalProvider`)."""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reaper_lsp.core.offline import Source, prepare
from reaper_lsp.workspace import read_regular_file, read_text_file

log = logging.getLogger(__name__)

MAX_FILES = 2000
MAX_FILE_BYTES = 512 * 1024
MAX_SCAN_BYTES = 20 * 1024 * 1024
MAX_UNKNOWN_BYTES = 64 * 1024
"""Files with an unfamiliar extension (or none: Makefile, Dockerfile) are read up to this size."""
MAX_ENTRIES = 100_000
"""Directory entries looked at, at most: a root like $HOME must not make the scan endless."""
MAX_SCAN_SECONDS = 10.0
"""The scan stops after this long, whatever it has read by then stays indexed."""
SKIP_DIRS = {
    "node_modules", "venv", "__pycache__", "dist", "build", "target", "out", "vendor",
    "bower_components", "site-packages", "coverage", "htmlcov",
}  # fmt: skip
SOURCE_SUFFIXES = {
    ".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".rs", ".go", ".c", ".h", ".cc",
    ".cpp", ".cxx", ".hpp", ".hh", ".m", ".mm", ".java", ".kt", ".kts", ".rb", ".lua", ".sh",
    ".bash", ".zsh", ".fish", ".php", ".cs", ".fs", ".swift", ".scala", ".ex", ".exs", ".erl",
    ".hs", ".ml", ".mli", ".zig", ".nim", ".dart", ".vue", ".svelte", ".sql", ".toml", ".yaml",
    ".yml", ".json", ".md", ".rst", ".txt", ".html", ".css", ".scss", ".less", ".el", ".vim",
    ".clj", ".cljs", ".r", ".jl", ".pl", ".pm", ".tf", ".proto", ".graphql", ".gradle", ".cmake",
    ".ini", ".cfg", ".xml", ".tex", ".groovy", ".ps1", ".bat", ".v", ".sv", ".vhd", ".cu",
}  # fmt: skip
SKIP_SUFFIXES = {
    ".png", ".jpg", ".jpeg", ".gif", ".ico", ".bmp", ".tiff", ".webp", ".psd", ".svg", ".pdf",
    ".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".tar", ".whl", ".egg", ".jar", ".war",
    ".so", ".dylib", ".dll", ".exe", ".bin", ".o", ".a", ".lib", ".obj", ".pyc", ".pyo", ".class",
    ".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp3", ".mp4", ".mov", ".avi", ".wav", ".flac",
    ".ogg", ".webm", ".sqlite", ".db", ".lock", ".map", ".pem", ".key", ".p12", ".pfx", ".crt",
    ".der", ".keystore", ".env", ".min.js", ".min.css", ".ipynb", ".csv", ".tsv", ".log",
    ".parquet",
}  # fmt: skip
SKIP_FILES = {"package-lock.json", "yarn.lock", "pnpm-lock.yaml", "poetry.lock", "Cargo.lock"}


@dataclass(frozen=True, slots=True)
class _Rule:
    """One .gitignore pattern: matched against the name, or (when it has a slash) against the
    path relative to the folder of its .gitignore."""

    base: str
    """That folder, with a trailing separator."""
    match: Callable[[str], object]
    anchored: bool
    directory_only: bool

    def ignores(self, path: str, name: str, is_dir: bool) -> bool:
        if self.directory_only and not is_dir:
            return False
        if not self.anchored:
            return bool(self.match(name))
        if not path.startswith(self.base):
            return False
        return bool(self.match(path[len(self.base) :].replace(os.sep, "/")))


def _gitignore(folder: Path) -> list[_Rule]:
    """The rules of `folder/.gitignore`, roughly: negations are ignored, `**/` is dropped."""
    text = read_text_file(folder / ".gitignore", MAX_UNKNOWN_BYTES)
    if text is None:
        return []
    rules = []
    for raw in text.splitlines()[:1000]:
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        directory_only = line.endswith("/")
        line = line.rstrip("/")
        while line.startswith("**/"):
            line = line[3:]
        if line:
            match = re.compile(fnmatch.translate(line.lstrip("/"))).match
            base = os.path.join(folder, "")
            rules.append(_Rule(base, match, "/" in line, directory_only))
    return rules


def _wanted_file(name: str, size: int) -> bool:
    lower = name.lower()
    if name in SKIP_FILES or lower.startswith(".env"):
        return False
    suffix = os.path.splitext(lower)[1]
    if suffix in SKIP_SUFFIXES or lower.endswith((".min.js", ".min.css")):
        return False
    limit = MAX_FILE_BYTES if suffix in SOURCE_SUFFIXES else MAX_UNKNOWN_BYTES
    return 0 < size <= limit


@dataclass
class Scanner:
    """Walks `roots` breadth first (shallow files first), skipping hidden, vendored, built and
    .gitignored paths, and prepares the files' index sources within the budgets. `batch` runs
    in a worker thread; the index itself is only touched by the caller."""

    roots: Sequence[Path]
    max_lines: int = 150_000
    files: int = 0
    lines: int = 0
    bytes: int = 0
    entries: int = 0
    done: bool = False
    _queue: deque[tuple[Path, list[_Rule]]] = field(default_factory=deque)
    _seen: set[Path] = field(default_factory=set)
    _deadline: float = field(default_factory=lambda: time.monotonic() + MAX_SCAN_SECONDS)

    def __post_init__(self) -> None:
        for root in self.roots:
            if root not in self._seen:
                self._seen.add(root)
                self._queue.append((root, []))

    def batch(self, max_files: int) -> list[Source]:
        """The next up to `max_files` prepared files; sets `done` when there is nothing left."""
        out: list[Source] = []
        while self._queue and len(out) < max_files and not self._exhausted():
            folder, inherited = self._queue.popleft()
            rules = inherited + _gitignore(folder)
            for path, is_dir, size in self._entries(folder):
                text, name = str(path), path.name
                if any(rule.ignores(text, name, is_dir) for rule in rules):
                    continue
                if is_dir:
                    if path not in self._seen:
                        self._seen.add(path)
                        self._queue.append((path, rules))
                    continue
                prepared = self._read(path, size)
                if prepared is not None:
                    out.append(prepared)
                if self._exhausted():
                    break
        self.done = not self._queue or self._exhausted()
        return out

    def _exhausted(self) -> bool:
        return (
            time.monotonic() > self._deadline
            or self.files >= MAX_FILES
            or self.bytes >= MAX_SCAN_BYTES
            or self.lines >= self.max_lines
            or self.entries >= MAX_ENTRIES
        )

    def _entries(self, folder: Path) -> list[tuple[Path, bool, int]]:
        """(path, is a folder, size) of the folder's entries worth a look, sorted by name."""
        found: list[tuple[Path, bool, int]] = []
        try:
            with os.scandir(folder) as listing:
                for entry in listing:
                    self.entries += 1
                    if self.entries > MAX_ENTRIES:
                        break
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in SKIP_DIRS and not entry.name.endswith(".egg-info"):
                            found.append((Path(entry.path), True, 0))
                    elif entry.is_file(follow_symlinks=False):
                        size = entry.stat(follow_symlinks=False).st_size
                        if _wanted_file(entry.name, size):
                            found.append((Path(entry.path), False, size))
        except OSError as exc:
            log.debug("workspace scan: skipping %s: %s", folder, exc)
        found.sort(key=lambda item: (item[1], item[0].name))
        return found

    def _read(self, path: Path, size: int) -> Source | None:
        if self.bytes + size > MAX_SCAN_BYTES:
            return None
        data = read_regular_file(path, MAX_FILE_BYTES)
        if data is None:
            return None
        if b"\x00" in data[:8192]:
            return None
        prepared = prepare(str(path), data.decode("utf-8", errors="replace"))
        if prepared is None or not len(prepared):
            return None
        self.files += 1
        self.bytes += len(data)
        self.lines += len(prepared)
        return prepared
