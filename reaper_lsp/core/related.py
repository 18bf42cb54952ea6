"""Snippets of the other open documents that share names with the code at the cursor: where
each name occurs is indexed per document version, so finding them costs a few look-ups per name,
not a scan of every open document per keystroke."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reaper_lsp.core.document import Document, strip_terminator
from reaper_lsp.core.types import CompletionContext

EXTRA_CHUNKS = 3
EXTRA_CHUNK_LINES = 12
EXTRA_TOTAL_CHARS = 4000
CURSOR_LINES = 12
"""Lines before the cursor whose identifiers pick the snippets."""
MAX_DOCUMENT_LINES = 5000
"""Longer documents are not searched (the search must cost well under a millisecond)."""

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_COMMON = frozenset(
    {
        "def", "return", "self", "none", "true", "false", "class", "import", "from", "for",
        "while", "with", "elif", "else", "this", "const", "let", "var", "function", "public",
        "private", "static", "void", "int", "str", "string", "new", "null",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Snippet:
    filename: str
    text: str
    score: int


def cursor_names(ctx: CompletionContext) -> set[str]:
    """Identifiers in the lines just before the cursor, common keywords left out."""
    recent = "\n".join(ctx.prefix.splitlines()[-CURSOR_LINES:])
    return {n for n in _IDENT.findall(recent) if n.lower() not in _COMMON}


STEP = EXTRA_CHUNK_LINES // 2
"""Windows start every STEP lines, so each overlaps the next by half."""
COMMON_WINDOWS = 64
"""A name found in more windows of a document than this says nothing about where to look."""


def _windows(doc: Document) -> dict[str, frozenset[int]]:
    """Each name in `doc` and the windows (window k: lines k·STEP to k·STEP + CHUNK) it is in."""
    found: dict[str, set[int]] = {}
    for number, line in enumerate(doc.lines):
        bucket = number // STEP
        for name in _IDENT.findall(line):
            windows = found.setdefault(name, set())
            windows.add(bucket)
            if bucket:
                windows.add(bucket - 1)
    return {name: frozenset(w) for name, w in found.items() if len(w) <= COMMON_WINDOWS}


class SnippetIndex:
    """Where names occur in each open document, rebuilt only when a document's version changes:
    finding the snippets then costs a few dictionary look-ups per name, not a scan."""

    def __init__(self) -> None:
        self._docs: dict[str, tuple[int, dict[str, frozenset[int]]]] = {}

    def related(
        self,
        ctx: CompletionContext,
        documents: Iterable[Document],
        name_of: Callable[[str], str],
    ) -> list[Snippet]:
        """The windows of other open documents that mention most of the names at the cursor,
        best first, at most `EXTRA_CHUNKS` of them and `EXTRA_TOTAL_CHARS` in all."""
        names = cursor_names(ctx)
        seen: dict[str, tuple[int, dict[str, frozenset[int]]]] = {}
        found: list[Snippet] = []
        for doc in documents:
            if doc.uri == ctx.uri or len(doc.lines) > MAX_DOCUMENT_LINES:
                continue
            known = self._docs.get(doc.uri)
            if known is None or known[0] != doc.version:
                known = (doc.version, _windows(doc))
            seen[doc.uri] = known
            scores: dict[int, int] = {}
            for name in names:
                for window in known[1].get(name, ()):
                    scores[window] = scores.get(window, 0) + 1
            if scores:
                window, best = max(scores.items(), key=lambda item: (item[1], -item[0]))
                first = window * STEP
                lines = doc.lines[first : first + EXTRA_CHUNK_LINES]
                text = "".join(strip_terminator(line) + "\n" for line in lines if line)
                found.append(Snippet(name_of(doc.uri), text, best))
        self._docs = seen  # documents closed since are forgotten
        found.sort(key=lambda s: -s.score)
        kept: list[Snippet] = []
        total = 0
        for snippet in found[:EXTRA_CHUNKS]:
            if total + len(snippet.text) > EXTRA_TOTAL_CHARS:
                break
            kept.append(snippet)
            total += len(snippet.text)
        return kept


def related_snippets(
    ctx: CompletionContext, documents: Iterable[Document], name_of: Callable[[str], str]
) -> list[Snippet]:
    """`SnippetIndex.related` without an index kept between calls."""
    return SnippetIndex().related(ctx, documents, name_of)


def _last_part(uri: str) -> str:
    return uri.rpartition("/")[2]
