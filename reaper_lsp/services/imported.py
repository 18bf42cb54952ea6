"""The workspace files a document imports, read for its snippets: the files `core/imports.py`
guesses from the import lines (Python, JS/TS, Go with go.mod's module path, Rust) that exist,
are regular files inside the workspace roots, are not excluded and are no larger than
`MAX_FILE_BYTES`.

The disk is never touched on a keystroke's path: files are read in a worker thread, kept by
path with their size and mtime (a file is read again only when those change), and a
document's imports are looked at again at most every `REFRESH` seconds, in the background,
while the requests meanwhile use what was read before. Only a document's first request waits
for the read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from reaper_lsp.core.document import Document
from reaper_lsp.core.imports import import_targets
from reaper_lsp.core.snippets import ImportedFile
from reaper_lsp.workspace import Workspace, language_of, read_text_file, uri_to_path

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 256 * 1024
"""Larger files (generated code, data) are not read: a snippet of them is rarely worth it."""
MAX_FILES = 16
"""Imported files read per document, at most (best guesses first)."""
MAX_PACKAGE_FILES = 8
"""Files of one Go package (a folder) read, at most."""
REFRESH = 2.0
"""Seconds before a document's imports, and the files they name, are looked at again."""
MAX_CACHED = 256
"""Files kept in memory, by path (the least recently read go first)."""
_GO_MODULE = re.compile(r"^module\s+(\S+)", re.M)

_Stamp = tuple[int, int]
"""(size, mtime in ns): a file whose stamp is unchanged is not read again."""


@dataclass(slots=True)
class _Imports:
    """What one document's imports gave, and when that was worked out."""

    checked: float
    files: list[ImportedFile]
    task: asyncio.Task[list[ImportedFile]] | None = None


@dataclass(slots=True)
class _Candidate:
    name: str
    """The path relative to the root, as prompts show it."""
    path: Path
    real: Path
    """`path` with symlinks resolved."""

    def uris(self) -> tuple[str, ...]:
        return (
            (self.path.as_uri(),)
            if self.real == self.path
            else (self.path.as_uri(), self.real.as_uri())
        )


@dataclass(slots=True)
class _Read:
    """What a worker thread read: the files, and the cache entries to keep."""

    files: list[ImportedFile] = field(default_factory=list)
    cached: dict[Path, tuple[_Stamp, str]] = field(default_factory=dict)


class ImportedFiles:
    """Imported files per document; `excluded(uri)` says which files must never be read for a
    prompt (asked on the event loop, never in a worker thread)."""

    def __init__(
        self,
        workspace: Workspace,
        excluded: Callable[[str], bool],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workspace = workspace
        self.excluded = excluded
        self._clock = clock
        self._docs: dict[str, _Imports] = {}
        self._cache: dict[Path, tuple[_Stamp, str]] = {}
        self.reads = 0
        """Files read from disk so far (tests and figures)."""

    async def of(self, doc: Document) -> list[ImportedFile]:
        """The files `doc` imports, as last read; the first call for a document waits for
        them, later ones start a refresh in the background when the last one is old."""
        entry = self._docs.get(doc.uri)
        now = self._clock()
        if entry is None:
            entry = self._docs[doc.uri] = _Imports(now, [])
            task = self._start(doc, entry)
            with contextlib.suppress(Exception):  # logged by `_landed`
                entry.files = await asyncio.shield(task)
            return entry.files
        busy = entry.task is not None and not entry.task.done()
        if not busy and now - entry.checked >= REFRESH:
            entry.checked = now
            self._start(doc, entry)
        return entry.files

    def forget(self, uri: str | None = None) -> None:
        """Drop what is known of `uri` (closed), or of every document (settings changed: the
        exclusions may have)."""
        for key in [uri] if uri is not None else list(self._docs):
            entry = self._docs.pop(key, None)
            if entry is not None and entry.task is not None:
                entry.task.cancel()

    def _start(self, doc: Document, entry: _Imports) -> asyncio.Task[list[ImportedFile]]:
        task = entry.task = asyncio.ensure_future(self._refresh(doc))
        task.add_done_callback(lambda done: self._landed(doc.uri, done))
        return task

    def _landed(self, uri: str, task: asyncio.Task[list[ImportedFile]]) -> None:
        """A refresh ended, perhaps after the request that started it was superseded."""
        entry = self._docs.get(uri)
        if task.cancelled():
            return
        if task.exception() is not None:  # a read problem costs snippets, never suggestions
            log.warning("reading the files %s imports failed: %r", uri, task.exception())
        elif entry is not None and entry.task is task:
            entry.files = task.result()

    async def _refresh(self, doc: Document) -> list[ImportedFile]:
        path = uri_to_path(doc.uri)
        root = self._root_of(path)
        if path is None or root is None:
            return []  # outside the roots nothing it imports can be read
        name = path.relative_to(root).as_posix()
        text = doc.text  # a snapshot: the document changes on the loop meanwhile
        found = await asyncio.to_thread(
            _candidates, self.workspace, root, name, doc.language_id, text
        )
        # A symlink is judged by its own name and by its target's.
        allowed = [c for c in found if not any(map(self.excluded, c.uris()))]
        known = {c.real: self._cache[c.real] for c in allowed if c.real in self._cache}
        read = await asyncio.to_thread(_read, allowed, known)
        self.reads += sum(1 for real, entry in read.cached.items() if known.get(real) != entry)
        for key, entry in read.cached.items():
            self._cache.pop(key, None)  # most recently used last
            self._cache[key] = entry
        while len(self._cache) > MAX_CACHED:
            del self._cache[next(iter(self._cache))]
        return read.files

    def _root_of(self, path: Path | None) -> Path | None:
        if path is None:
            return None
        for root in self.workspace.roots:
            if path == root or root in path.parents:
                return root
        return None


def _candidates(
    workspace: Workspace, root: Path, current: str, language: str, text: str
) -> list[_Candidate]:
    """The import targets of `text` that are files inside the roots (symlinks resolved): the
    files named, and the .go files of package folders."""
    module, module_dir = _go_module(root, current) if current.endswith(".go") else ("", "")
    targets = import_targets(language, text, current, go_module=module, go_module_dir=module_dir)
    named: list[tuple[str, Path]] = []
    for target in targets:
        if target.endswith("/"):
            named += _package(root, target.rstrip("/"))
        elif (root / target).is_file():
            named.append((target, root / target))
    out: list[_Candidate] = []
    for name, path in named:
        if len(out) >= MAX_FILES:
            break
        if workspace.inside(path):
            out.append(_Candidate(name, path, Path(os.path.realpath(path))))
    return out


def _package(root: Path, folder: str) -> list[tuple[str, Path]]:
    try:
        names = sorted(os.listdir(root / folder))
    except OSError:
        return []
    files = [n for n in names if n.endswith(".go") and not n.endswith("_test.go")]
    prefix = f"{folder}/" if folder not in ("", ".") else ""
    return [(prefix + n, root / folder / n) for n in files[:MAX_PACKAGE_FILES]]


def _go_module(root: Path, current: str) -> tuple[str, str]:
    """The module path in the go.mod nearest above `current` (inside `root`), and its folder."""
    parts = current.split("/")[:-1]
    for depth in range(len(parts), -1, -1):
        folder = "/".join(parts[:depth])
        text = read_text_file(root / folder / "go.mod", 64 * 1024, whole=True)
        if text is not None:
            found = _GO_MODULE.search(text)
            return (found.group(1) if found else "", folder)
    return "", ""


def _read(candidates: Iterable[_Candidate], known: dict[Path, tuple[_Stamp, str]]) -> _Read:
    """Read the candidates (regular files, size-capped); an unchanged file is not read again."""
    out = _Read()
    for candidate in candidates:
        try:
            info = os.stat(candidate.real)
        except OSError:
            continue
        if info.st_size > MAX_FILE_BYTES:
            continue
        stamp = (info.st_size, info.st_mtime_ns)
        cached = known.get(candidate.real)
        if cached is not None and cached[0] == stamp:
            text: str | None = cached[1]
        else:
            text = read_text_file(candidate.real, MAX_FILE_BYTES, whole=True)
        if text is None or "\x00" in text[:8192]:
            continue
        out.cached[candidate.real] = (stamp, text)
        out.files.append(ImportedFile(candidate.name, language_of(candidate.path), text))
    return out
