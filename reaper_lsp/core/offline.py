"""The offline engine's index: lines already written in open documents and the workspace,
looked up by how they start, so a line being typed can be finished from a similar one.

Pure and bounded: lookups go through a dict keyed by a line's first word (or first characters)
and scan at most a few hundred candidates; the index caps lines per source and in total.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from reaper_lsp.core.types import CompletionContext

MAX_LINE = 400
MAX_LINES_PER_SOURCE = 20_000
MAX_TOTAL_LINES = 200_000
MAX_CANDIDATES = 400
MIN_TYPED = 2

_IDENT = re.compile(r"[^\W\d]\w*")
_IDENT_TAIL = re.compile(r"[^\W\d]\w*$")


def _key(stripped: str) -> str:
    """Bucket of a stripped line: its first two characters (enough to narrow, cheap to find)."""
    return stripped[:2]


@dataclass(frozen=True, slots=True)
class _Line:
    source: str
    number: int
    text: str
    """Stripped of leading and trailing whitespace."""


class OfflineIndex:
    def __init__(self) -> None:
        self._lines: dict[str, list[_Line]] = {}
        self._buckets: dict[str, list[_Line]] = defaultdict(list)
        self._identifiers: dict[str, Counter[str]] = defaultdict(Counter)
        """Identifier counts bucketed by their first two characters."""
        self._total = 0

    def __len__(self) -> int:
        return self._total

    def sources(self) -> int:
        return len(self._lines)

    def update(self, source: str, text: str) -> None:
        if "\x00" in text[:4096]:
            self.remove(source)
            return  # binary
        self.update_lines(source, text.splitlines())

    def update_lines(self, source: str, raw_lines: Iterable[str]) -> None:
        """Replace what is indexed for `source` (only its first lines past the caps)."""
        self.remove(source)
        room = min(MAX_LINES_PER_SOURCE, MAX_TOTAL_LINES - self._total)
        lines: list[_Line] = []
        for number, raw in enumerate(raw_lines):
            if len(lines) >= room:
                break
            stripped = raw.strip()
            if len(stripped) < 3 or len(stripped) > MAX_LINE:
                continue
            line = _Line(source, number, stripped)
            lines.append(line)
            self._buckets[_key(stripped)].append(line)
            for name in _IDENT.findall(stripped):
                self._identifiers[name[:2]][name] += 1
        self._lines[source] = lines
        self._total += len(lines)

    def remove(self, source: str) -> None:
        old = self._lines.pop(source, None)
        if not old:
            return
        self._total -= len(old)
        gone = {id(line) for line in old}
        for key in {_key(line.text) for line in old}:
            bucket = [line for line in self._buckets[key] if id(line) not in gone]
            if bucket:
                self._buckets[key] = bucket
            else:
                del self._buckets[key]
        for line in old:
            for name in _IDENT.findall(line.text):
                names = self._identifiers[name[:2]]
                names[name] -= 1
                if names[name] <= 0:
                    del names[name]

    def suggest(
        self,
        context: CompletionContext,
        *,
        current_source: str | None = None,
        current_line: int | None = None,
        limit: int = 1,
    ) -> list[str]:
        """Text to insert at the cursor, best first: the rest of a similar line, else the line
        that followed the previous line elsewhere, else the rest of a known identifier."""
        typed = context.line_prefix.lstrip()
        after = context.line_suffix.strip()
        found: list[str] = []
        if len(typed.strip()) >= MIN_TYPED:
            found = self._continue_line(typed, after, current_source, current_line)
            if not found:
                found = self._identifier(typed)
        elif not typed.strip() and not after:
            found = self._next_line(context, current_source, current_line)
        return found[:limit]

    def _continue_line(
        self, typed: str, after: str, source: str | None, number: int | None
    ) -> list[str]:
        scores: dict[str, float] = defaultdict(float)
        checked = 0
        for line in reversed(self._buckets.get(_key(typed), ())):
            if checked >= MAX_CANDIDATES:
                break
            checked += 1
            if not line.text.startswith(typed) or len(line.text) <= len(typed):
                continue
            if line.source == source and line.number == number:
                continue  # the line being edited
            rest = line.text[len(typed) :]
            if after:
                if not rest.endswith(after):
                    continue
                rest = rest[: -len(after)]
            if not rest.strip():
                continue
            near = 2.0 if line.source == source else 1.0
            scores[rest] += near
        return sorted(scores, key=lambda text: -scores[text])

    def _next_line(
        self, context: CompletionContext, source: str | None, number: int | None
    ) -> list[str]:
        prefix = context.prefix
        end = prefix.rfind("\n")
        previous = ""
        while end > 0:
            start = prefix.rfind("\n", 0, end) + 1
            previous = prefix[start:end].strip()
            if previous:
                break
            end = start - 1
        if len(previous) < 3:
            return []
        scores: dict[str, float] = defaultdict(float)
        checked = 0
        for line in reversed(self._buckets.get(_key(previous), ())):
            if checked >= MAX_CANDIDATES:
                break
            checked += 1
            if line.text != previous:
                continue
            lines = self._lines.get(line.source, [])
            follower = _following(lines, line)
            if follower is None or follower.text == previous:
                continue
            if line.source == source and number is not None and follower.number >= number - 1:
                continue  # that is the text around the cursor itself
            scores[follower.text] += 2.0 if line.source == source else 1.0
        return sorted(scores, key=lambda text: -scores[text])

    def _identifier(self, typed: str) -> list[str]:
        match = _IDENT_TAIL.search(typed)
        if match is None or len(match.group(0)) < MIN_TYPED:
            return []
        stem = match.group(0)
        best = [
            (count, name)
            for name, count in self._identifiers.get(stem[:2], Counter()).items()
            if len(name) > len(stem) and name.startswith(stem)
        ]
        best.sort(key=lambda item: (-item[0], item[1]))
        return [name[len(stem) :] for _, name in best[:5]]


def _following(lines: list[_Line], line: _Line) -> _Line | None:
    """The indexed line right after `line` in its source (lines are in order)."""
    lo, hi = 0, len(lines)
    while lo < hi:
        mid = (lo + hi) // 2
        if lines[mid].number <= line.number:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(lines) and lines[lo].number <= line.number + 2:
        return lines[lo]
    return None
