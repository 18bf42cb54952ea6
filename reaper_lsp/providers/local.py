"""The offline provider: completions from the open documents and the workspace's files, with
no account and no network. Always last in the chain, so the user sees something even when
every provider is down or none is configured."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Literal

from reaper_lsp.core.document import DocumentStore
from reaper_lsp.core.offline import MAX_LINES_PER_SOURCE, OfflineIndex
from reaper_lsp.providers.base import ChatRequest, CompletionRequest, StreamStats

log = logging.getLogger(__name__)

MAX_FILES = 2000
MAX_FILE_BYTES = 512 * 1024
MAX_SCAN_BYTES = 20 * 1024 * 1024
SKIP_DIRS = {
    ".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", "dist", "build",
    "target", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".tox", ".idea", ".vscode",
}  # fmt: skip
SOURCE_SUFFIXES = {
    ".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".mjs", ".rs", ".go", ".c", ".h", ".cc", ".cpp",
    ".hpp", ".java", ".kt", ".rb", ".lua", ".sh", ".bash", ".zsh", ".php", ".cs", ".swift",
    ".scala", ".ex", ".exs", ".erl", ".hs", ".ml", ".zig", ".nim", ".dart", ".vue", ".svelte",
    ".sql", ".toml", ".yaml", ".yml", ".json", ".md", ".rst", ".txt", ".html", ".css", ".scss",
    ".el", ".vim", ".clj", ".r", ".jl", ".pl", ".tf", ".proto", ".graphql",
}  # fmt: skip


class LocalProvider:
    name = "local"

    def __init__(self, documents: DocumentStore, *, workspace_roots: Sequence[Path] = ()) -> None:
        self._documents = documents
        self._roots = list(workspace_roots)
        self._index = OfflineIndex()
        self._seen: dict[str, tuple[int, int]] = {}
        """uri → (version, line count) of each open document as last indexed."""
        self._scan: asyncio.Task[None] | None = None

    def unusable_reason(self) -> str | None:
        return None

    def model_for(self, kind: Literal["completion", "chat"]) -> str:
        return "offline"

    def _refresh_documents(self) -> None:
        """Re-index open documents that changed since the last request (first lines only, so
        a huge buffer costs the cap, not its size)."""
        open_uris = set()
        for doc in self._documents:
            open_uris.add(doc.uri)
            stamp = (doc.version, len(doc.lines))
            if self._seen.get(doc.uri) != stamp:
                self._seen[doc.uri] = stamp
                self._index.update_lines(doc.uri, doc.lines[:MAX_LINES_PER_SOURCE])
        for uri in [u for u in self._seen if u not in open_uris]:
            del self._seen[uri]

    async def stream_completion(
        self, request: CompletionRequest, stats: StreamStats
    ) -> AsyncIterator[str]:
        stats.model = "offline"
        self._refresh_documents()
        current = self._current_source(request)
        found = self._index.suggest(
            request.context,
            current_source=current[0] if current else None,
            current_line=current[1] if current else None,
        )
        if found:
            yield found[0]

    def _current_source(self, request: CompletionRequest) -> tuple[str, int] | None:
        """(uri, line) of the cursor, found by the context's path among open documents."""
        path = request.context.path
        line = request.context.prefix.count("\n")
        for doc in self._documents:
            if path and doc.uri.endswith("/" + path.lstrip("/")):
                return doc.uri, line
        return None

    async def stream_chat(self, request: ChatRequest, stats: StreamStats) -> AsyncIterator[str]:
        stats.model = "offline"
        yield (
            "Chat needs a provider: set OPENAI_API_KEY or ANTHROPIC_API_KEY, run "
            "`reaper-lsp login copilot`, or point [providers.ollama] base_url at a running Ollama."
        )

    # -- workspace scan -----------------------------------------------------------------------

    async def start_workspace_scan(self) -> None:
        """Index the workspace's source files in the background; returns at once."""
        if self._scan is None and self._roots:
            self._scan = asyncio.get_running_loop().create_task(self._run_scan())

    async def wait_scanned(self) -> None:
        if self._scan is not None:
            await asyncio.shield(self._scan)

    async def _run_scan(self) -> None:
        try:
            files = await asyncio.to_thread(_read_workspace, self._roots)
        except Exception:  # a scan problem must never take completion down
            log.exception("workspace scan failed")
            return
        for path, text in files:
            uri = path.as_uri()
            if uri not in self._seen:  # an open document is fresher than the disk
                self._index.update(uri, text)
        log.info("offline index: %d lines from %d files", len(self._index), len(files))

    async def aclose(self) -> None:
        if self._scan is not None and not self._scan.done():
            self._scan.cancel()


def _read_workspace(roots: Sequence[Path]) -> list[tuple[Path, str]]:
    """Source files under `roots`, skipping vendored, built and hidden directories, within the
    file count and byte budgets."""
    out: list[tuple[Path, str]] = []
    total = 0
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            for name in sorted(names):
                path = Path(folder, name)
                if path.suffix.lower() not in SOURCE_SUFFIXES:
                    continue
                try:
                    size = path.stat().st_size
                    if size > MAX_FILE_BYTES or total + size > MAX_SCAN_BYTES:
                        continue
                    text = path.read_text(encoding="utf-8", errors="replace")
                except OSError as exc:
                    log.debug("skipping %s: %s", path, exc)
                    continue
                total += size
                out.append((path, text))
                if len(out) >= MAX_FILES:
                    return out
    return out
