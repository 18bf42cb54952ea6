"""One source of the offline engine's index: a document's (or file's) lines, prepared for
prefix lookups by `prepare` without touching the index — safe in a worker thread. Pure."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

MAX_LINE = 400
"""Longer lines (minified code, data) are not indexed."""
MAX_LINES_PER_SOURCE = 20_000
MAX_GAP = 2
"""Blank lines allowed between a line and the one that follows it."""
KEY_LONG = 8
"""Sources are found by the first 2 characters of their lines, and by the first 8 when the
text looked up is that long (so a lookup visits few sources even in a large workspace)."""

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_IDENT = re.compile(r"[^\W\d]\w{2,}")
_TAIL = re.compile(
    r"(?:return|yield|await)\s+"
    r"|[^\"'=()<>!]{1,80}?(?:[-+*/%&|^:]|//|\*\*|<<|>>)?=(?![=>~])\s*"
)
"""What precedes a line's right-hand side: `x = `, `total += `, `return `, `await `."""


def tail_start(stripped: str) -> int:
    """Where the right-hand side of a statement starts, or 0 when it has none."""
    if "=" not in stripped and not stripped.startswith(("return", "yield", "await")):
        return 0
    match = _TAIL.match(stripped)
    return match.end() if match and match.end() < len(stripped) else 0


def looks_binary(text: str) -> bool:
    """NULs or many control characters in the first 8 KB: not something to complete from."""
    head = text[:8192]
    if "\x00" in head:
        return True
    return len(_CONTROL.findall(head)) > len(head) // 100 + 2


@dataclass(slots=True)
class Source:
    """One source's indexed lines, built by `prepare` and read-only once added."""

    name: str
    first: int
    """Line number of `raw[0]` (a window of a long document)."""
    raw: list[str]
    """Every line of the window, right-stripped; "" for blank and skipped lines."""
    starts: list[str]
    """Stripped non-blank lines, sorted."""
    start_rows: list[int]
    """Index into `raw` of each entry of `starts`."""
    tails: list[str]
    """Right-hand sides of statements, sorted."""
    tail_rows: list[int]
    idents: Counter[str]
    keys: frozenset[str]
    """First 2 and (when that long) 8 characters of every entry of `starts` and `tails`."""
    tick: int = 0

    def __len__(self) -> int:
        return len(self.starts)

    def starting(self, typed: str, limit: int, *, tails: bool = False) -> list[tuple[int, str]]:
        """(row, text) of at most `limit` stripped lines (or right-hand sides) starting with
        `typed`."""
        texts, rows = (self.tails, self.tail_rows) if tails else (self.starts, self.start_rows)
        i = bisect_left(texts, typed)
        end = min(len(texts), i + limit)
        found: list[tuple[int, str]] = []
        while i < end and texts[i].startswith(typed):
            found.append((rows[i], texts[i]))
            i += 1
        return found

    def preceding(self, row: int) -> str:
        """The last non-blank line before `row` (within `MAX_GAP` blank lines), stripped."""
        for before in range(row - 1, max(-1, row - 2 - MAX_GAP), -1):
            if self.raw[before]:
                return self.raw[before].lstrip()
        return ""

    def following(self, row: int) -> int | None:
        """Row of the first non-blank line after `row`, within `MAX_GAP` blank lines."""
        for nxt in range(row + 1, min(row + 2 + MAX_GAP, len(self.raw))):
            if self.raw[nxt]:
                return nxt
        return None


def prepare(
    name: str, lines: str | Iterable[str], *, first: int = 0, max_lines: int = MAX_LINES_PER_SOURCE
) -> Source | None:
    """Build a source from its text (or its lines, from line number `first`), without touching
    any index: safe to run in a worker thread. None for binary-looking text."""
    if isinstance(lines, str):
        if looks_binary(lines):
            return None
        lines = lines.splitlines()
    raw: list[str] = []
    starts: list[str] = []
    start_rows: list[int] = []
    tails: list[str] = []
    tail_rows: list[int] = []
    for row, line in enumerate(lines):
        if row >= max_lines:
            break
        if len(line) > MAX_LINE + 2:
            raw.append("")
            continue
        text = line.rstrip()
        stripped = text.lstrip()
        if len(stripped) < 2:
            raw.append("")
            continue
        raw.append(text)
        starts.append(stripped)
        start_rows.append(row)
        cut = tail_start(stripped)
        if cut:
            tails.append(stripped[cut:])
            tail_rows.append(row)
    starts, start_rows = _sorted(starts, start_rows)
    tails, tail_rows = _sorted(tails, tail_rows)
    idents = Counter(_IDENT.findall("\n".join(starts)))
    keys = {source_key(text) for text in starts} | {source_key(text) for text in tails}
    keys |= {text[:2] for text in starts} | {text[:2] for text in tails}
    return Source(name, first, raw, starts, start_rows, tails, tail_rows, idents, frozenset(keys))


def _sorted(texts: list[str], rows: list[int]) -> tuple[list[str], list[int]]:
    order = sorted(range(len(texts)), key=texts.__getitem__)
    return [texts[i] for i in order], [rows[i] for i in order]


def source_key(text: str) -> str:
    """The finest key a lookup for `text` can use: sources without it hold no match."""
    return text[:KEY_LONG] if len(text) >= KEY_LONG else text[:2]
