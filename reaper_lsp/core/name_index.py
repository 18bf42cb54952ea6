"""Where each name occurs in one version of one document, in windows of WINDOW_LINES lines:
per-line identifier sets and definitions, each window's names as one integer mask, and an
inverted index from a name to the STEP-line buckets it occurs in.

A new version is indexed from the previous one: the lines an edit left alone keep their work
(found by comparing the two versions a chunk at a time), edited lines are looked up in a cache
of line texts, so a keystroke costs the lines it touched plus a pass over the line list.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import pairwise

from reaper_lsp.core.symbols import definitions, identifiers

WINDOW_LINES = 20
STEP = WINDOW_LINES // 2
"""Windows start every STEP lines, so each overlaps the next by half: whatever a reader would
cut out as one piece lies wholly inside some window."""
RENUMBER_SLACK = 512
"""Names numbered beyond twice those in use, before a document's numbering starts afresh."""

LineInfo = tuple[tuple[str, ...], tuple[str, ...], int]
"""A line's identifiers, the names it defines, and its identifiers as a mask."""


class NameIndex:
    """What one version of one document offers to the ranking. Names are numbered per
    document, so that a window's names are one integer and what it shares with the cursor
    is `(a & b).bit_count()`; the numbering carries over to the next version, and with it
    the work done on every line that did not change."""

    __slots__ = (
        "bits", "buckets", "defined", "defs", "family", "infos", "key", "known", "lines",
        "names", "postings", "sizes", "windows",
    )  # fmt: skip

    def __init__(self, key: object, lines: Sequence[str], fam: str, old: NameIndex | None) -> None:
        self.key = key
        self.lines = tuple(lines)  # the caller's list may be edited in place after this build
        self.family = fam
        if old is not None and old.family != fam:
            old = None
        self.bits: dict[str, int] = old.bits if old is not None else {}
        self.known: dict[str, LineInfo] = old.known if old is not None else {}
        """Line text -> its info, shared by the versions of one document."""
        head = tail = 0
        if old is not None:
            head = common_lines(self.lines, old.lines, 1)
            tail = common_lines(self.lines[head:], old.lines[head:], -1)
        self.infos = self._infos(old, head, tail)
        self.buckets = self._buckets(old, head, tail)
        live = union(self.buckets).bit_count()
        if len(self.bits) > 2 * live + RENUMBER_SLACK:
            # Names typed and deleted since the numbering began only widen every mask.
            self.bits = {}
            self.infos = [(names, defs, self._mask(names)) for names, defs, _ in self.infos]
            self.known = dict(zip(self.lines, self.infos, strict=True))
            self.buckets = self._buckets(None, 0, 0)
        elif len(self.known) > 2 * len(self.lines) + RENUMBER_SLACK:
            self.known = dict(zip(self.lines, self.infos, strict=True))  # forget edited lines
        self.windows = [a | b for a, b in pairwise(self.buckets)] or self.buckets
        self.sizes = [w.bit_count() for w in self.windows]
        self.defined = self._defined(old, head, tail)
        defs: dict[str, list[int]] = {}
        for number, name in self.defined:
            defs.setdefault(name, []).append(number)
        self.defs = _frozen(defs)
        self.names = sorted(self.defs)
        self.postings: dict[str, tuple[int, ...]] | None = None

    def _infos(self, old: NameIndex | None, head: int, tail: int) -> list[LineInfo]:
        """Each line's info: the previous version's for the `head` and `tail` lines the edit
        left alone, the line cache's or a fresh reading for those in between."""
        lines, known = self.lines, self.known
        middle = [known.get(line) or self._learn(line) for line in lines[head : len(lines) - tail]]
        if old is None:
            return middle
        return old.infos[:head] + middle + old.infos[len(old.infos) - tail :]

    def _defined(self, old: NameIndex | None, head: int, tail: int) -> list[tuple[int, str]]:
        """(line, name) of every definition, in line order; the previous version's, shifted,
        outside the edit."""
        stop = len(self.infos) - tail
        middle = [(n, name) for n in range(head, stop) for name in self.infos[n][1]]
        if old is None:
            return middle
        before = old.defined[: bisect_left(old.defined, (head, ""))]
        old_stop = len(old.infos) - tail
        shift = stop - old_stop
        after = old.defined[bisect_left(old.defined, (old_stop, "")) :]
        return before + middle + [(n + shift, name) for n, name in after]

    def _learn(self, line: str) -> LineInfo:
        info = self.known[line] = self._read(line)
        return info

    def _read(self, line: str) -> LineInfo:
        names = identifiers(line)
        return names, definitions(self.family, line), self._mask(names)

    def _mask(self, names: Iterable[str]) -> int:
        mask = 0
        for name in names:
            bit = self.bits.get(name)
            if bit is None:
                bit = self.bits[name] = 1 << len(self.bits)
            mask |= bit
        return mask

    def _buckets(self, old: NameIndex | None, head: int, tail: int) -> list[int]:
        """Each STEP lines' names as one mask. Those before the edit keep the previous
        version's; so do those after it unless the edit added or removed lines (a keystroke
        recomputes one bucket, a new line the buckets below it)."""
        infos = self.infos
        count = -(-len(infos) // STEP)
        first, stop = 0, count
        if old is not None:
            first = min(head // STEP, len(old.buckets))
            if len(old.infos) == len(infos):
                stop = max(first, -(-(len(infos) - tail) // STEP))
        out = old.buckets[:first] if old is not None else []
        out += [
            union(info[2] for info in infos[b * STEP : b * STEP + STEP]) for b in range(first, stop)
        ]
        if old is not None and stop < count:
            out += old.buckets[stop:count]
        return out or [0]

    def mask_of(self, names: Iterable[str]) -> int:
        """The names this document knows, as a mask (the unknown ones it cannot share)."""
        mask = 0
        for bit in map(self.bits.get, names):
            if bit is not None:
                mask |= bit
        return mask

    def span_mask(self, start: int, end: int) -> int:
        return union(info[2] for info in self.infos[start:end])

    def inverted(self) -> dict[str, tuple[int, ...]]:
        """Name -> the buckets (STEP lines each) it occurs in; built on first use, since the
        document being edited (re-indexed at every keystroke) never needs it."""
        if self.postings is None:
            postings: dict[str, list[int]] = {}
            for number, info in enumerate(self.infos):
                bucket = number // STEP
                for name in info[0]:
                    found = postings.get(name)
                    if found is None:
                        postings[name] = [bucket]
                    elif found[-1] != bucket:
                        found.append(bucket)
            self.postings = _frozen(postings)
        return self.postings


def common_lines(a: Sequence[str], b: Sequence[str], direction: int) -> int:
    """How many lines `a` and `b` share at their start (direction 1) or end (-1), compared a
    chunk at a time: list equality runs in C and mostly compares identical objects."""
    limit = min(len(a), len(b))
    done = 0
    chunk = 64
    while done < limit:
        size = min(chunk, limit - done)
        if direction > 0:
            same = a[done : done + size] == b[done : done + size]
        else:
            same = (
                a[len(a) - done - size : len(a) - done] == b[len(b) - done - size : len(b) - done]
            )
        if same:
            done += size
        elif size == 1:
            break
        else:
            chunk = max(1, size // 8)
    return done


def _frozen(lists: dict[str, list[int]]) -> dict[str, tuple[int, ...]]:
    """Tuples of numbers, unlike lists, are dropped from the garbage collector's watch: twenty
    documents' worth of lists made each full collection walk tens of thousands of them."""
    return {name: tuple(numbers) for name, numbers in lists.items()}


def union(masks: Iterable[int]) -> int:
    out = 0
    for mask in masks:
        out |= mask
    return out
