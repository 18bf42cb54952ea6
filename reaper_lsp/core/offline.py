"""The offline engine: suggestions from lines already written, with no model and no network.

Three strategies, strongest first:

1. *Line continuation*: a line being typed is finished from indexed lines that start the same
   way (or, failing that, whose right-hand side after `=` / `return` starts like the typed one).
2. *Next line*: on a blank line, what followed the previous line where it occurs elsewhere
   (import blocks, repeated statement pairs), re-indented to the cursor.
3. *Identifier*: the partial word before the cursor finished from known identifiers.

Pure and bounded. Each source keeps its stripped lines in a sorted list, so every line starting
with a given text is one `bisect` away; a dict from two-character keys to sources skips sources
without such lines. Sources are prepared without touching the index (`prepare`, safe in a worker
thread) and installed in O(their size) (`add`); the index holds at most `MAX_TOTAL_LINES` lines
and evicts the least recently updated sources to make room.
"""

from __future__ import annotations

__all__ = ["MAX_LINE", "MAX_LINES_PER_SOURCE", "OfflineIndex", "Source", "prepare"]

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from reaper_lsp.core.document import indentation
from reaper_lsp.core.offline_source import (
    MAX_LINE,
    MAX_LINES_PER_SOURCE,
    Source,
    prepare,
    source_key,
    tail_start,
)
from reaper_lsp.core.offline_text import (
    fit_suffix,
    previous_nonblank,
    ranked,
    reindent,
)
from reaper_lsp.core.types import CompletionContext

MAX_TOTAL_LINES = 200_000
MIN_TYPED = 2
"""Non-space characters typed on the line before a line continuation is attempted."""
MIN_TAIL = 4
"""Characters typed after `=` (or `return`) before right-hand sides are looked up."""
MAX_MATCHES_PER_SOURCE = 32
MAX_MATCHES_CURRENT = 512
MAX_MATCHES = 600
"""Candidate lines examined per request, all sources together."""
MAX_NEXT_LINES = 4
"""A next-line suggestion is one line plus at most this many lines of the block it opens."""
AGREE = 0.5
"""A finished line is suggested whole when it holds this share of the candidates' weight;
otherwise only the start that this share agrees on."""
RECENT_SOURCES = 8
"""Sources among the last this many updated get a small bonus (the user is working there)."""

_IDENT_TAIL = re.compile(r"[^\W\d]\w*$")


@dataclass(frozen=True, slots=True)
class _Cursor:
    """The request, reduced to what the strategies need."""

    typed: str
    """The cursor line before the cursor, without its indentation."""
    indent: str
    """The cursor line's leading whitespace before the cursor."""
    after: str
    """The rest of the cursor line, stripped."""
    next_line: str
    """The first non-blank line after the cursor's line, stripped."""
    previous: str
    """The last non-blank line before the cursor's line (with its indentation)."""
    gap: int
    """Blank lines between that line and the cursor's line."""
    source: str | None
    line: int | None


class OfflineIndex:
    """Lines of many sources (a source id is a URI or a path), looked up by how they start."""

    def __init__(self, *, max_lines: int = MAX_TOTAL_LINES) -> None:
        self._max_lines = max_lines
        self._sources: dict[str, Source] = {}
        """In update order: the first is the least recently updated."""
        self._by_key: dict[str, set[str]] = {}
        self._idents: dict[str, dict[str, int]] = {}
        """Identifier counts, bucketed by their first two characters."""
        self._total = 0
        self._tick = 0

    # -- contents -------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Indexed (non-blank) lines, all sources together."""
        return self._total

    def __contains__(self, source: object) -> bool:
        return source in self._sources

    def stats(self) -> dict[str, int]:
        return {
            "sources": len(self._sources),
            "lines": self._total,
            "identifiers": sum(len(bucket) for bucket in self._idents.values()),
        }

    def room(self) -> int:
        """Lines that can still be added without evicting anything."""
        return self._max_lines - self._total

    def update(self, source: str, text: str) -> None:
        """Replace what is indexed for `source` (binary-looking text removes it)."""
        self.add(prepare(source, text), name=source)

    def update_lines(self, source: str, lines: Iterable[str], *, first: int = 0) -> None:
        """Like `update`, from lines (terminators allowed) starting at line number `first`."""
        self.add(prepare(source, lines, first=first), name=source)

    def add(self, prepared: Source | None, *, name: str | None = None) -> None:
        """Install a prepared source, replacing the one of the same name; None removes `name`."""
        if prepared is None:
            if name is not None:
                self.remove(name)
            return
        self.remove(prepared.name)
        if len(prepared) > self._max_lines:
            return
        while self._sources and self._total + len(prepared) > self._max_lines:
            self.remove(next(iter(self._sources)))
        self._tick += 1
        prepared.tick = self._tick
        self._sources[prepared.name] = prepared
        self._total += len(prepared)
        for key in prepared.keys:
            self._by_key.setdefault(key, set()).add(prepared.name)
        for ident, count in prepared.idents.items():
            bucket = self._idents.setdefault(ident[:2], {})
            bucket[ident] = bucket.get(ident, 0) + count

    def remove(self, source: str) -> None:
        old = self._sources.pop(source, None)
        if old is None:
            return
        self._total -= len(old)
        for key in old.keys:
            names = self._by_key.get(key)
            if names is not None:
                names.discard(source)
                if not names:
                    del self._by_key[key]
        for ident, count in old.idents.items():
            bucket = self._idents.get(ident[:2])
            if bucket is None:
                continue
            left = bucket.get(ident, 0) - count
            if left > 0:
                bucket[ident] = left
            else:
                bucket.pop(ident, None)
                if not bucket:
                    del self._idents[ident[:2]]

    # -- suggestions ----------------------------------------------------------------------------

    def suggest(
        self,
        context: CompletionContext,
        *,
        limit: int = 1,
        current_source: str | None = None,
        current_line: int | None = None,
        multiline: bool = True,
    ) -> list[str]:
        """Text to insert at the cursor, best first, at most `limit` items.

        `current_source`/`current_line` name the document and 0-based line of the cursor, so
        the line being edited is not suggested back (and nearby lines weigh more). Suggestions
        never repeat what is typed, are never blank, and are single lines except next-line
        suggestions (and those only with `multiline`)."""
        cursor = _cursor(context, current_source, current_line)
        if cursor is None or limit <= 0:
            return []
        out: list[str] = []
        for text in self._strategies(cursor, multiline):
            if text not in out and _acceptable(text, cursor, multiline):
                out.append(text)
                if len(out) >= limit:
                    break
        return out

    def _strategies(self, cursor: _Cursor, multiline: bool) -> Iterator[str]:
        """Candidates of every strategy that applies, strongest first (computed on demand)."""
        if len(cursor.typed.strip()) >= MIN_TYPED:
            found = self._continue_line(cursor)
            cut = tail_start(cursor.typed)
            if not found and cut and len(cursor.typed) - cut >= MIN_TAIL:
                found = self._continue_line(cursor, cursor.typed[cut:])
            yield from found
        elif not cursor.typed and not cursor.after:
            yield from self._next_line(cursor, multiline)
        yield from self._identifier(cursor)

    def _weight(self, source: Source, row: int, cursor: _Cursor, *, after: bool = True) -> float:
        """How much one occurrence counts: same document (more when near), recently edited,
        and (with `after`) written after the same line as the cursor's line."""
        weight = 1.0
        if after and cursor.previous and source.preceding(row) == cursor.previous.strip():
            weight += 2.0
        if source.name == cursor.source:
            weight += 3.0
            if cursor.line is not None:
                weight += 6.0 / (1.0 + abs(source.first + row - cursor.line) / 8.0)
        if self._tick - source.tick < RECENT_SOURCES:
            weight += 0.5
        return weight

    def _lookup(
        self, typed: str, cursor: _Cursor, *, tails: bool = False
    ) -> Iterator[tuple[Source, list[tuple[int, str]]]]:
        """(source, [(row, text)]) of lines (or right-hand sides) starting with `typed`: the
        cursor's source first, then the most recently updated, within `MAX_MATCHES`."""
        names = self._by_key.get(source_key(typed))
        if not names:
            return
        budget = MAX_MATCHES
        if cursor.source in names:
            current = self._sources[cursor.source]
            rows = current.starting(typed, MAX_MATCHES_CURRENT, tails=tails)
            budget -= len(rows)
            if rows:
                yield current, rows
        sources = sorted((self._sources[name] for name in names), key=_newest)
        for source in sources:
            if source.name == cursor.source:
                continue
            rows = source.starting(typed, min(budget, MAX_MATCHES_PER_SOURCE), tails=tails)
            if rows:
                yield source, rows
                budget -= len(rows)
                if budget <= 0:
                    return

    def _continue_line(self, cursor: _Cursor, typed: str | None = None) -> list[str]:
        """Rests of lines starting with `typed` (default: the whole typed line; otherwise a
        right-hand side, looked up among line starts and right-hand sides alike)."""
        whole = typed is None
        typed = cursor.typed if typed is None else typed
        scores: dict[str, float] = {}
        for source, rows in self._lookup(typed, cursor, tails=not whole):
            for row, text in rows:
                if source.name == cursor.source and source.first + row == cursor.line:
                    continue  # the line being edited
                rest = fit_suffix(text[len(typed) :], cursor.after)
                if rest:
                    scores[rest] = scores.get(rest, 0.0) + self._weight(source, row, cursor)
        return ranked(scores, agree=AGREE, strict=True)

    def _next_line(self, cursor: _Cursor, multiline: bool) -> list[str]:
        """What followed the previous non-blank line where it occurs elsewhere."""
        stripped = cursor.previous.strip()
        if len(stripped) < MIN_TYPED:
            return []
        base, gap = indentation(cursor.previous), cursor.gap
        scores: dict[str, float] = {}
        for source, rows in self._lookup(stripped, cursor):
            for row, text in rows:
                if text != stripped:
                    continue
                own = cursor.line is not None and cursor.line - gap - 1 == source.first + row
                if own and source.name == cursor.source:
                    continue  # the previous line itself: what follows it is the cursor
                follower = source.following(row)
                if follower is None:
                    continue
                block = _block(source, row, follower, base, cursor.indent, multiline)
                if block.strip() == stripped:
                    continue
                weight = self._weight(source, row, cursor, after=False)
                if follower - row - 1 != gap:
                    weight *= 0.5
                scores[block] = scores.get(block, 0.0) + weight
        return ranked(scores, agree=AGREE, strict=True)

    def _identifier(self, cursor: _Cursor) -> list[str]:
        """The rest of known identifiers starting with the partial word before the cursor."""
        if cursor.after[:1].isidentifier() or cursor.after[:1].isdigit():
            return []  # the cursor is inside a word
        match = _IDENT_TAIL.search(cursor.typed)
        if match is None or len(match.group(0)) < MIN_TYPED:
            return []
        stem = match.group(0)
        current = self._sources.get(cursor.source or "")
        local = current.idents if current is not None else Counter[str]()
        scored = [
            (count + 3 * local.get(name, 0), name)
            for name, count in self._idents.get(stem[:2], {}).items()
            if len(name) > len(stem) and name.startswith(stem)
        ]
        scored.sort(key=lambda item: (-item[0], len(item[1]), item[1]))
        return [name[len(stem) :] for _, name in scored[:8]]


# -- helpers ------------------------------------------------------------------------------------


def _cursor(context: CompletionContext, source: str | None, line: int | None) -> _Cursor | None:
    line_prefix = context.line_prefix
    line_prefix = line_prefix[line_prefix.rfind("\r") + 1 :]
    if len(line_prefix) > MAX_LINE:
        return None
    typed = line_prefix.lstrip()
    rest = context.suffix.split("\n", 1)
    next_line = ""
    if len(rest) > 1:
        next_line = next((s.strip() for s in rest[1][:4096].split("\n") if s.strip()), "")
    previous, gap = previous_nonblank(context.prefix)
    return _Cursor(
        typed=typed,
        indent=line_prefix[: len(line_prefix) - len(typed)],
        after=context.line_suffix.strip(),
        next_line=next_line,
        previous=previous,
        gap=gap,
        source=source,
        line=line,
    )


def _newest(source: Source) -> int:
    return -source.tick


def _acceptable(text: str, cursor: _Cursor, multiline: bool) -> bool:
    if not text.strip() or ("\n" in text and (cursor.typed or not multiline)):
        return False
    first = text.split("\n", 1)[0].strip()
    return not (not cursor.typed and first == cursor.next_line)  # already below the cursor


def _block(
    source: Source, row: int, follower: int, base: str, typed_indent: str, multiline: bool
) -> str:
    """The follower of `row` (and, with `multiline`, the lines of the block it opens),
    re-indented from `row`'s indentation to `base`, minus what the cursor line already has."""
    old_base = indentation(source.raw[row])
    head = source.raw[follower]
    head_indent = indentation(head)
    lines = [head]
    if multiline:
        for nxt in range(follower + 1, min(follower + 1 + MAX_NEXT_LINES, len(source.raw))):
            line = source.raw[nxt]
            if not line or len(indentation(line)) <= len(head_indent):
                break
            lines.append(line)
    shifted = [reindent(indentation(line), old_base, base) + line.lstrip() for line in lines]
    first = shifted[0]
    if first.startswith(typed_indent):
        shifted[0] = first[len(typed_indent) :]
    else:
        shifted[0] = first.lstrip()  # the editor indented differently: keep its indentation
    return "\n".join(shifted)
