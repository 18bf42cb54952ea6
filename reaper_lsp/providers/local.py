"""The offline provider: completions from the open documents and the workspace's files, with no
account and no network. Always last in the chain, so something useful shows up even when no
provider is configured or every one is down.

A request's snippets (imported files, parts of files the workspace scan has not reached) are
indexed too, as extra sources, so the offline engine draws on the same context as the models.

Open documents are re-indexed lazily, when their version changed since the last request: small
ones at once (a few milliseconds), large ones in a worker thread while this request uses the
previous index. The workspace is read in a background task, in batches prepared in a worker
thread, within file-count and byte budgets.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from reaper_lsp.core.document import Document, DocumentStore
from reaper_lsp.core.offline import MAX_LINES_PER_SOURCE, OfflineIndex, prepare
from reaper_lsp.core.types import CompletionContext, ContextSnippet
from reaper_lsp.providers.base import ChatRequest, CompletionRequest
from reaper_lsp.providers.local_scan import Scanner

log = logging.getLogger(__name__)

BATCH_FILES = 64
RESERVED_LINES = 50_000
"""Index room the scan leaves for open documents."""
SYNC_LINES = 2_000
"""Open documents up to this many lines are re-indexed during the request; longer ones in a
worker thread (the request uses their previous index meanwhile)."""
SYNC_BUDGET = 4_000
"""Lines re-indexed synchronously per request, all documents together."""
LOCATE_SCAN = 50_000
"""Lines searched for the cursor when the context's prefix was cut."""
CONTEXT_SOURCES = 32
"""Snippets kept indexed as extra sources (the oldest go first)."""
CONTEXT_PREFIX = "context:"

CHAT_HELP = (
    "The offline engine completes code but cannot chat. Configure a chat provider and list it "
    "in [chat] providers: set OPENAI_API_KEY (or providers.openai.api_key / api_key_env), set "
    "ANTHROPIC_API_KEY (or providers.claude.api_key / api_key_env), run `reaper-lsp login "
    "copilot`, or point providers.ollama.base_url at a running Ollama."
)


def source_id(uri: str) -> str:
    """The index's name for a document: the file's path for `file:` URIs (so an open document
    replaces the same file read from disk), else the URI itself."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return uri
    return os.path.normpath(url2pathname(unquote(parsed.path)))


class LocalProvider:
    """The `local` provider: the offline engine over open documents and workspace files."""

    name = "local"

    def __init__(self, documents: DocumentStore, *, workspace_roots: Sequence[Path] = ()) -> None:
        self._documents = documents
        self._roots = [Path(os.path.abspath(root)) for root in workspace_roots]
        self.index = OfflineIndex()
        self._indexed: dict[str, tuple[int, int, int, int]] = {}
        """Source id → (version, id of the line list, line count, first line) as indexed."""
        self._pending: dict[str, asyncio.Task[None]] = {}
        """Background re-indexing of large documents, by source id."""
        self._last_line: dict[str, int] = {}
        """Where the cursor was last found, by source id (a start for the next search)."""
        self._scan: asyncio.Task[None] | None = None
        self._context: dict[str, str] = {}
        """Snippets indexed as extra sources: source id → text, oldest first."""

    def unusable_reason(self) -> str | None:
        return None

    def model_for(self, kind: Literal["completion", "chat"]) -> str:
        return "offline"

    # -- completion -------------------------------------------------------------------------

    async def stream_completion(self, request: CompletionRequest) -> AsyncIterator[str]:
        for text in self._candidates(request, 1):
            yield text

    async def stream_alternatives(
        self, request: CompletionRequest
    ) -> AsyncIterator[tuple[int, str]]:
        """The engine's best `request.n` candidates, one whole text each."""
        for index, text in enumerate(self._candidates(request, request.n)):
            yield index, text

    def _candidates(self, request: CompletionRequest, limit: int) -> list[str]:
        context = request.context
        doc = self._documents.get(context.uri) if context.uri else None
        if doc is not None and 0 <= context.line < len(doc.lines):
            line: int | None = context.line
        else:  # a context cut elsewhere (tests, tools): find its document and line by its text
            doc = doc or self._document_for(context)
            line = _locate(doc, context, self._last_line.get(source_id(doc.uri))) if doc else None
        current = source_id(doc.uri) if doc is not None else None
        if current is not None and line is not None:
            self._last_line[current] = line
        self._refresh(doc, line)
        self._index_snippets(request.snippets)
        found = self.index.suggest(
            context,
            limit=limit,
            current_source=current,
            current_line=line,
            multiline=request.multiline,
        )
        texts = [_cut_at_stops(text, request.stop) for text in found]
        return [text for text in dict.fromkeys(texts) if text.strip()]

    def _index_snippets(self, snippets: Sequence[ContextSnippet]) -> None:
        """Index the snippets of files not indexed already (an imported file the workspace scan
        did not reach, or a workspace the editor opened without a root)."""
        for snippet in snippets:
            if any(str(root / snippet.filename) in self.index for root in self._roots):
                continue
            sid = CONTEXT_PREFIX + snippet.filename
            if self._context.get(sid) == snippet.text and sid in self.index:
                continue
            self._context.pop(sid, None)
            self._context[sid] = snippet.text
            self.index.update(sid, snippet.text)
            while len(self._context) > CONTEXT_SOURCES:
                oldest = next(iter(self._context))
                self.index.remove(oldest)
                del self._context[oldest]

    def _document_for(self, context: CompletionContext) -> Document | None:
        """The open document a context without a URI was cut from, found by its path."""
        path = context.path.replace("\\", "/").lstrip("/")
        if not path:
            return None
        found = [
            doc
            for doc in self._documents
            if doc.uri == context.path or unquote(doc.uri).endswith(("/" + path, ":" + path))
        ]
        if len(found) > 1:  # same file name in several folders: the one whose text fits
            fitting = [doc for doc in found if _locate(doc, context, None) is not None]
            found = fitting or found
        return found[0] if found else None

    def _refresh(self, current: Document | None, line: int | None) -> None:
        """Re-index open documents that changed since they were last indexed: the current one
        first, small ones now (within `SYNC_BUDGET` lines), large ones in the background."""
        docs = list(self._documents)
        if current is not None:
            docs.sort(key=lambda doc: doc is not current)
        open_ids: set[str] = set()
        budget = SYNC_BUDGET
        for doc in docs:
            sid = source_id(doc.uri)
            open_ids.add(sid)
            first = _window(len(doc.lines), line if doc is current else None)
            stamp = (doc.version, id(doc.lines), len(doc.lines), first)
            if self._indexed.get(sid) == stamp and sid in self.index:
                continue
            size = min(len(doc.lines), MAX_LINES_PER_SOURCE)
            if size <= SYNC_LINES and size <= budget:
                budget -= size
                self.index.update_lines(sid, doc.lines[first : first + size], first=first)
                self._indexed[sid] = stamp
            elif size > SYNC_LINES and sid not in self._pending:
                snapshot = doc.lines[first : first + size]
                task = asyncio.get_running_loop().create_task(
                    self._reindex(sid, snapshot, first, stamp)
                )
                self._pending[sid] = task
        for sid in [sid for sid in self._indexed if sid not in open_ids]:
            del self._indexed[sid]  # closed: its text stays indexed until evicted
            self._last_line.pop(sid, None)

    async def wait_indexed(self) -> None:
        """Wait for the background re-indexing of large documents started so far."""
        if self._pending:
            await asyncio.wait(list(self._pending.values()))

    async def _reindex(
        self, sid: str, lines: list[str], first: int, stamp: tuple[int, int, int, int]
    ) -> None:
        try:
            prepared = await asyncio.to_thread(prepare, sid, lines, first=first)
            self.index.add(prepared, name=sid)
            self._indexed[sid] = stamp
        except Exception:  # never let indexing break completion
            log.warning("offline index: re-indexing %s failed", sid, exc_info=True)
        finally:
            self._pending.pop(sid, None)

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        yield CHAT_HELP

    async def prewarm(self) -> None:
        """Nothing to open: the workspace scan starts with the session (`start_workspace_scan`)."""

    async def keep_warm(self) -> None:
        """Nothing to keep open."""

    # -- workspace scan ---------------------------------------------------------------------

    async def start_workspace_scan(self) -> None:
        """Start indexing the workspace's files in the background; returns at once."""
        if self._scan is None and self._roots:
            self._scan = asyncio.get_running_loop().create_task(self._run_scan())

    async def wait_scanned(self) -> None:
        """Wait until the workspace scan (if one was started) has finished."""
        if self._scan is not None:
            await asyncio.wait({self._scan})

    async def _run_scan(self) -> None:
        started = time.monotonic()
        scanner = Scanner(self._roots, max_lines=max(0, self.index.room() - RESERVED_LINES))
        try:
            while not scanner.done:
                batch = await asyncio.to_thread(scanner.batch, BATCH_FILES)
                for prepared in batch:
                    if prepared.name not in self._indexed:  # an open document is fresher
                        self.index.add(prepared)
        except Exception:  # a scan problem must never take completion down
            log.warning("workspace scan failed", exc_info=True)
        log.info(
            "offline index: %d files read, %d lines indexed in %.0f ms",
            scanner.files,
            len(self.index),
            (time.monotonic() - started) * 1000,
        )

    async def aclose(self) -> None:
        tasks = [*self._pending.values(), *([self._scan] if self._scan else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _window(size: int, line: int | None) -> int:
    """First line indexed of a document of `size` lines: 0, or for documents longer than the
    per-source cap a window around the cursor (moved in steps, so typing does not move it)."""
    if size <= MAX_LINES_PER_SOURCE or line is None:
        return 0
    step = MAX_LINES_PER_SOURCE // 4
    first = max(0, line - MAX_LINES_PER_SOURCE // 2) // step * step
    return min(first, size - MAX_LINES_PER_SOURCE)


def _locate(doc: Document, context: CompletionContext, hint: int | None) -> int | None:
    """The document line the context's cursor is on (the prefix may have been cut, so its
    line count is only a first guess), or None when the text does not fit."""
    current = context.line_prefix + context.line_suffix.removesuffix("\r")
    before = context.prefix[: len(context.prefix) - len(context.line_prefix)]
    previous = before[:-1].rsplit("\n", 1)[-1].removesuffix("\r") if before else None

    def fits(i: int) -> bool:
        if doc.line_text(i) != current:
            return False
        return previous is None or (i > 0 and doc.line_text(i - 1) == previous)

    guess = before.count("\n")
    for i in (guess, hint):
        if i is not None and 0 <= i < len(doc.lines) and fits(i):
            return i
    for i in range(guess + 1, min(len(doc.lines), guess + LOCATE_SCAN)):
        if fits(i):
            return i
    return None


def _cut_at_stops(text: str, stops: Sequence[str]) -> str:
    cut = min((i for i in (text.find(stop) for stop in stops if stop) if i > 0), default=-1)
    return text[:cut] if cut > 0 else text
