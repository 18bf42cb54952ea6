"""Code the model should see besides the text around the cursor: windows of the other open
documents, of the files the current one imports and of distant parts of the current file,
ranked by what they share with the code at the cursor and packed under a character budget.

Ranking follows Copilot's "neighboring tabs": Jaccard similarity between the identifier set of
the lines just before the cursor and that of each candidate window, plus a bonus for a window
that starts at the definition of a name used at the cursor — or of the name being typed, so
that `rate = compute_` finds `def compute_tax_rate`. Each document's index (per-line identifier
sets and definitions, windows, an inverted index) is cached by (uri, version), and a new
version reuses the previous one's per-line work, so a keystroke re-indexes one line, not the
file.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

from reaper_lsp.core.document import strip_terminator
from reaper_lsp.core.name_index import STEP, WINDOW_LINES, NameIndex
from reaper_lsp.core.symbols import family, identifiers

CURSOR_LINES = WINDOW_LINES
"""Lines up to the cursor whose identifiers are compared with each window (Copilot compares
windows of one size on both sides)."""
DEFINITION_BONUS = 1.0
"""Added for defining a name on the cursor's line: worth more than any similarity (≤ 1)."""
NEARBY_BONUS = 0.25
"""Added for defining a name used elsewhere in the cursor window."""
MIN_SCORE = 0.08
"""Below this a window shares only a few everyday words with the cursor; sending it costs
prompt tokens and buys nothing."""
PER_DOCUMENT = 6
"""Windows per document kept as candidates."""
TOP_BUCKETS = 4
"""Buckets (STEP lines) of another document whose windows are scored: those holding most of
the cursor's rarest names."""
COMMON_SHARE = 0.25
"""A name in more than this share of a document's buckets says nothing about where to look:
it picks no candidates there (it still counts in their exact similarity)."""
RARE_NAMES = 16
"""Of the cursor's names, the rarest this many in a document pick its candidates: a bound on
the work per document whatever the cursor window holds."""
MIN_PARTIAL = 3
"""A name being typed shorter than this matches too many definitions to mean anything."""
PARTIAL_MATCHES = 4
"""Definitions per document a name being typed may pick."""
MAX_LINES = 10_000
"""Longer documents (generated, minified, data) are not indexed."""
NEW_LINES = 2_000
"""Documents never seen before are indexed (~6 µs a line) while a build has spent fewer lines
than this on them, the current document first: opening twenty files must not stall one
keystroke; the rest wait for the next."""
MAX_SNIPPETS = 8
"""More, smaller pieces would each cost a header and say less."""
MIN_FREE = 40
"""Packing stops when less than this is left: no snippet fits in fewer characters."""
_LEAD_IN = ("@", "#", "//", "/*", "*", "--")
"""Lines just above a definition that belong to it: decorators, attributes, doc comments."""
_PARTIAL = re.compile(r"[^\W\d]\w*$")


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """An open document as the builder sees it; `lines` may keep their terminators
    (`Document.lines` fits as it is)."""

    uri: str
    name: str
    """The path the prompt shows: relative to the workspace root."""
    language: str
    version: int
    lines: Sequence[str]


@dataclass(frozen=True, slots=True)
class ImportedFile:
    """A file the current one imports, read by the caller (the core does no I/O)."""

    name: str
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class Snippet:
    filename: str
    """The path the prompt shows."""
    text: str
    """Whole lines without a final line break."""
    score: float
    origin: str
    """"open" (another open document), "import" (an imported file) or "current"."""


@dataclass(frozen=True, slots=True)
class _Cursor:
    names: tuple[str, ...]
    """Sorted, so that equal inputs give equal answers whatever the string hash seed."""
    near: frozenset[str]
    """Names on the cursor's line, before the cursor."""
    partial: str
    """The identifier the cursor ends, when long enough to look definitions up by."""


@dataclass(frozen=True, slots=True)
class _Source:
    index: NameIndex
    name: str
    origin: str
    blocked: tuple[int, int] | None = None
    """Lines (first, last) not to take: the current file's part already in the prompt."""


_Candidate = tuple[float, str, int, int, _Source]
"""(score, file name, first line, end line exclusive, source)."""


class ContextBuilder:
    """Ranks and packs snippets; keep one per session so indexes survive between keystrokes."""

    def __init__(self) -> None:
        self._indexes: dict[str, NameIndex] = {}

    def build(
        self,
        current: SourceDocument,
        *,
        line: int,
        prompt_lines: tuple[int, int],
        column: int | None = None,
        others: Iterable[SourceDocument] = (),
        imported: Iterable[ImportedFile] = (),
        max_chars: int = 4000,
    ) -> list[Snippet]:
        """Snippets best first, their texts `max_chars` at most in all.

        `line`/`column`: the cursor (0-based line, string index; None: the line's end);
        `prompt_lines`: the first and last line of `current` already in the prompt;
        `others`: the other open documents (any language: unrelated ones are skipped);
        `imported`: files the current one imports, read by the caller. Documents not passed
        are forgotten."""
        cursor = _cursor(current.lines, line, column)
        sources = self._sources(current, prompt_lines, others, imported)
        own = sources[0].index.defs
        candidates: list[_Candidate] = []
        for source in sources:
            mask = source.index.mask_of(cursor.names)
            if mask:
                candidates.extend(_windows(source, cursor, mask))
            shadowed = own if source.origin != "current" else {}
            candidates.extend(_definitions(source, cursor, mask, shadowed))
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        return _pack(candidates, max_chars)

    def _sources(
        self,
        current: SourceDocument,
        prompt_lines: tuple[int, int],
        others: Iterable[SourceDocument],
        imported: Iterable[ImportedFile],
    ) -> list[_Source]:
        fam = family(current.language, current.name)
        indexes = _Indexes(self._indexes)
        index = indexes.get(current.uri, current.version, fam, current.lines)
        sources = [_Source(index, current.name, "current", prompt_lines)]
        seen = {current.uri, current.name}
        for doc in others:
            if seen.intersection((doc.uri, doc.name)):
                continue
            seen.update((doc.uri, doc.name))
            if family(doc.language, doc.name) == fam and len(doc.lines) <= MAX_LINES:
                found = indexes.affordable(doc.uri, doc.version, fam, doc.lines)
                if found is not None:
                    sources.append(_Source(found, doc.name, "open"))
        for file in imported:
            if file.name in seen:
                continue
            seen.add(file.name)
            if family(file.language, file.name) == fam:
                # An imported file has no version: its text is the version.
                slot, text = "import:" + file.name, file.text
                found = indexes.affordable(slot, text, fam, text)
                if found is not None and 0 < len(found.lines) <= MAX_LINES:
                    sources.append(_Source(found, file.name, "import"))
        self._indexes = indexes.kept  # what was not passed this time is closed or not imported
        return sources


class _Indexes:
    """The indexes one build uses: the previous build's while their key (a version) holds,
    else built anew from the previous version's."""

    def __init__(self, previous: dict[str, NameIndex]) -> None:
        self.previous = previous
        self.kept: dict[str, NameIndex] = {}
        self.new_lines = NEW_LINES

    def get(self, slot: str, key: object, fam: str, lines: Sequence[str] | str) -> NameIndex:
        """The index kept under `slot` if it was built for `key`, else one built from `lines`
        (a text is split only then: that costs a pass over it)."""
        index = self.previous.get(slot)
        if index is None or index.family != fam or not (index.key is key or index.key == key):
            rows = lines.splitlines() if isinstance(lines, str) else lines
            if index is None:
                self.new_lines -= len(rows)
            index = NameIndex(key, rows, fam, index)
        self.kept[slot] = index
        return index

    def affordable(
        self, slot: str, key: object, fam: str, lines: Sequence[str] | str
    ) -> NameIndex | None:
        """`get`, or None when the index would be built from nothing and this build's budget
        for that (NEW_LINES) is spent."""
        if slot not in self.previous and self.new_lines <= 0:
            return None
        return self.get(slot, key, fam, lines)


def prompt_lines(prefix: str, suffix: str, line: int) -> tuple[int, int]:
    """(first, last) line of the document that a prefix and suffix cut around the cursor's
    `line` cover — what `ContextBuilder.build` must not repeat."""

    def breaks(text: str) -> int:
        return text.count("\n") + text.count("\r") - text.count("\r\n")

    return line - breaks(prefix), line + breaks(suffix)


def _cursor(lines: Sequence[str], line: int, column: int | None) -> _Cursor:
    line = max(0, min(line, len(lines) - 1))
    here = strip_terminator(lines[line]) if lines else ""
    if column is not None:
        here = here[:column]
    names = set(identifiers(here))
    near = frozenset(names)
    for text in lines[max(0, line - CURSOR_LINES + 1) : line]:
        names.update(identifiers(text))
    typed = _PARTIAL.search(here)
    partial = typed.group() if typed and len(typed.group()) >= MIN_PARTIAL else ""
    return _Cursor(tuple(sorted(names)), near, partial)


def _windows(source: _Source, cursor: _Cursor, mask: int) -> list[_Candidate]:
    """The windows most similar to the cursor's (Jaccard over their names; `mask`: the
    cursor's names this document knows). Another document's are picked through its inverted
    index; the current document changes at every keystroke, so each of its windows outside
    the prompt is scored instead."""
    index = source.index
    if source.blocked is not None:
        first, last = source.blocked
        numbers: Iterable[int] = chain(
            range(0, (first - WINDOW_LINES) // STEP + 1 if first >= WINDOW_LINES else 0),
            range(max(0, last) // STEP + 1, len(index.windows)),
        )
    else:
        numbers = _likely_windows(index, cursor)
    windows, sizes, size = index.windows, index.sizes, len(cursor.names)
    shares = [(shared, k) for k in numbers if (shared := (mask & windows[k]).bit_count())]
    scored = [(shared / (size + sizes[k] - shared), k) for shared, k in shares]
    scored = [pair for pair in scored if pair[0] >= MIN_SCORE]
    scored.sort(key=itemgetter(0), reverse=True)
    out: list[_Candidate] = []
    for score, k in scored[:PER_DOCUMENT]:
        start = k * STEP
        end = min(start + WINDOW_LINES, len(index.lines))
        out.append((score, source.name, start, end, source))
    return out


def _likely_windows(index: NameIndex, cursor: _Cursor) -> list[int]:
    """The windows around the buckets holding most of the cursor's rarest names there."""
    postings = index.inverted()
    cap = max(2, int(-(-len(index.infos) // STEP) * COMMON_SHARE))
    lists = [p for p in map(postings.get, cursor.names) if p is not None and len(p) <= cap]
    lists.sort(key=len)
    counts = Counter(chain.from_iterable(lists[:RARE_NAMES]))
    best = sorted(counts, key=counts.__getitem__, reverse=True)[:TOP_BUCKETS]
    last = len(index.windows) - 1
    return sorted({k for b in best for k in (b - 1, b) if 0 <= k <= last})


def _definitions(
    source: _Source, cursor: _Cursor, mask: int, shadowed: Container[str]
) -> list[_Candidate]:
    """Windows that start where a name used (or being typed) at the cursor is defined. A name
    in `shadowed` (one the current file defines itself) is the current file's: another file's
    definition of it is a homonym, such as another class's method of the same name."""
    index = source.index
    bonus: dict[str, float] = {}
    for name in cursor.names:
        if name in index.defs and name not in shadowed:
            bonus[name] = DEFINITION_BONUS if name in cursor.near else NEARBY_BONUS
    if cursor.partial:
        at = bisect_left(index.names, cursor.partial)
        for name in index.names[at : at + PARTIAL_MATCHES]:
            if not name.startswith(cursor.partial):
                break
            if name not in shadowed:
                typed = DEFINITION_BONUS * len(cursor.partial) / len(name)
                bonus[name] = max(bonus.get(name, 0.0), typed)
    out: list[_Candidate] = []
    for name, extra in bonus.items():
        for number in index.defs[name]:
            span = _definition_span(index, number, source.blocked)
            if span is not None:
                names = index.span_mask(*span)
                shared = (mask & names).bit_count()
                union = len(cursor.names) + names.bit_count() - shared
                score = (shared / union if union else 0.0) + extra
                out.append((score, source.name, span[0], span[1], source))
    return out


def _definition_span(
    index: NameIndex, number: int, blocked: tuple[int, int] | None
) -> tuple[int, int] | None:
    """Lines [start, end) of the definition on line `number`: its lead-in (decorators, doc
    comments), then up to the next definition indented no deeper, WINDOW_LINES at most."""
    lines = index.lines
    start = number
    while start > 0 and number - start < 3 and lines[start - 1].lstrip().startswith(_LEAD_IN):
        start -= 1
    depth = _indent(lines[number])
    end = number + 1
    limit = min(len(lines), start + WINDOW_LINES)
    while end < limit and not (index.infos[end][1] and _indent(lines[end]) <= depth):
        end += 1
    if blocked is not None:
        first, last = blocked
        if start <= last and end > first:
            if number < first:
                end = first  # the rest is in the prompt already
            else:
                return None
    return start, end


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _pack(candidates: list[_Candidate], max_chars: int) -> list[Snippet]:
    """Best first; never two overlapping pieces of one file; a piece too long for what is left
    keeps its first lines (a definition's head matters most)."""
    taken: dict[str, list[tuple[int, int]]] = {}
    out: list[Snippet] = []
    free = max_chars
    for score, name, start, end, source in candidates:
        if free < MIN_FREE or len(out) >= MAX_SNIPPETS:
            break
        piece = _text(source.index.lines, start, end, free)
        if piece is None:
            continue
        text, start, end = piece
        if any(start < e and s < end for s, e in taken.get(name, ())):
            continue
        taken.setdefault(name, []).append((start, end))
        out.append(Snippet(name, text, score, source.origin))
        free -= len(text)
    return out


def _text(lines: Sequence[str], start: int, end: int, free: int) -> tuple[str, int, int] | None:
    """The lines [start, end) without blank lines at either edge, cut to `free` characters at a
    line boundary; with the lines actually used. None when nothing is left."""
    rows = [strip_terminator(line) for line in lines[start:end]]
    while rows and not rows[-1].strip():
        rows.pop()
        end -= 1
    while rows and not rows[0].strip():
        rows.pop(0)
        start += 1
    size = -1
    for count, row in enumerate(rows):
        size += len(row) + 1
        if size > free:
            rows = rows[:count]
            end = start + count
            break
    if not rows:
        return None
    return "\n".join(rows), start, end
