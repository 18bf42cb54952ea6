"""Next-edit suggestions from chat models, pure: the prompt (recent edits as a small diff, the
numbered code around the cursor) and the parser of the strict block format it asks for.

An answer is untrusted text: anything that is not a well-formed block whose original lines
match the document inside the shown region is dropped, never raised on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from reaper_lsp.core.document import Position, index_to_utf16, strip_terminator, utf16_to_index
from reaper_lsp.core.nes import Edit, NextEdit

NES_RADIUS = 20
"""Lines shown either side of the cursor in a next-edit prompt."""
MAX_ANSWER = 100_000
HISTORY_SHOWN = 6

_HEAD = re.compile(r"<{7}\s*lines?\s+(\d{1,7})(?:\s*[-–]\s*(\d{1,7}))?\s*:?")
_NUMBERED = re.compile(r"\s*\d+ \| ?")
"""A line number copied from the prompt's listing."""


def _u16(text: str) -> int:
    return index_to_utf16(text, len(text))


def _shared(a: str, b: str) -> int:
    """Length of the common prefix."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


_SYSTEM = """\
You predict the next edits a developer will make, from their recent edits and the code around \
the cursor. Continue what they are doing (a rename, a changed signature, a repeated pattern); \
do not add features or rewrite code they did not touch.

Answer with one block per edit and nothing else:
<<<<<<< lines A-B
the original lines A to B, copied exactly, without line numbers
=======
the replacement lines
>>>>>>>
A and B are line numbers of the shown code (B may equal A). Keep blocks small and apart. To \
insert, include a neighbouring line and repeat it in the replacement. When nothing is left to \
do, answer exactly: NONE"""


def nes_region(line_count: int, cursor_line: int, radius: int = NES_RADIUS) -> tuple[int, int]:
    """The 0-based inclusive line range a next-edit prompt shows and an answer may edit."""
    last = max(0, line_count - 1)
    centre = min(max(cursor_line, 0), last)
    return max(0, centre - radius), min(last, centre + radius)


def _hunk(lines: Sequence[str], edit: Edit) -> list[str]:
    """Whole lines before and after an edit, in unified-diff style."""
    old, new = (t.replace("\r\n", "\n").replace("\r", "\n") for t in (edit.old, edit.new))
    after_end = edit.end[0]
    header = f"@@ line {edit.line + 1} @@"
    if after_end < len(lines):
        after = "\n".join(strip_terminator(lines[k]) for k in range(edit.line, after_end + 1))
        start = utf16_to_index(after.split("\n")[0], edit.character)
        if after[start : start + len(new)] == new:
            before = after[:start] + old + after[start + len(new) :]
            return [
                header,
                *("-" + t for t in before.split("\n")),
                *("+" + t for t in after.split("\n")),
            ]
    return [header, *("-" + t for t in old.split("\n")), *("+" + t for t in new.split("\n"))]


def nes_messages(
    history: Sequence[Edit], lines: Sequence[str], cursor: Position, language: str, path: str
) -> tuple[str, str]:
    """(system, user) messages asking a chat model for the next edits, in `_SYSTEM`'s format."""
    first, last = nes_region(len(lines), cursor.line)
    listing = [row for edit in history[-HISTORY_SHOWN:] for row in _hunk(lines, edit)] or ["(none)"]
    width = len(str(last + 1))
    code = [f"{k + 1:>{width}} | {strip_terminator(lines[k])}" for k in range(first, last + 1)]
    user = [
        f"File: {path or 'untitled'} ({language or 'text'})",
        "",
        "Recent edits, oldest first:",
        *listing,
        "",
        f"Code, lines {first + 1}-{last + 1}; the cursor is on line {cursor.line + 1}, "
        f"column {cursor.character + 1}:",
        *code,
        "",
        "What are the next edits?",
    ]
    return _SYSTEM, "\n".join(user)


def _blocks(answer: str) -> Iterator[tuple[int, int, list[str], list[str]]]:
    head: tuple[int, int] | None = None
    old: list[str] = []
    new: list[str] = []
    in_new = False
    for raw in answer.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        marker = raw.strip()
        if m := _HEAD.fullmatch(marker):
            head, old, new, in_new = (int(m.group(1)), int(m.group(2) or m.group(1))), [], [], False
        elif head is None:
            continue
        elif marker == "=======" and not in_new:
            in_new = True
        elif marker == ">>>>>>>" and in_new:
            yield head[0], head[1], old, new
            head = None
        else:
            (new if in_new else old).append(raw)


def parse_nes_answer(answer: str, lines: Sequence[str], region: tuple[int, int]) -> list[NextEdit]:
    """Edits from a model's answer; blocks outside `region` or not matching the document are
    dropped, and so is anything that is not a block. Never raises."""
    edits: list[NextEdit] = []
    for a, b, old, new in _blocks(answer[:MAX_ANSWER]):
        first, last = a - 1, b - 1
        if not region[0] <= first <= last <= min(region[1], len(lines) - 1):
            continue
        current = [strip_terminator(lines[k]) for k in range(first, last + 1)]
        if [t.rstrip() for t in old] != [t.rstrip() for t in current]:
            stripped = [_NUMBERED.sub("", t, count=1) for t in old]
            if [t.rstrip() for t in stripped] != [t.rstrip() for t in current]:
                continue
            new = [_NUMBERED.sub("", t, count=1) for t in new]
        found = _minimal_edits(lines, first, current, new)
        if all(_apart(f, e) for f in found for e in edits):
            edits.extend(found)
    return sorted(edits, key=lambda e: (e.start_line, e.start_character))


def _apart(a: NextEdit, b: NextEdit) -> bool:
    a_start, a_end = (a.start_line, a.start_character), (a.end_line, a.end_character)
    b_start, b_end = (b.start_line, b.start_character), (b.end_line, b.end_character)
    return a_end <= b_start or b_end <= a_start


def _line_edit(line: int, old: str, new: str) -> NextEdit:
    p = _shared(old, new)
    s = _shared(old[p:][::-1], new[p:][::-1])
    return NextEdit(line, _u16(old[:p]), line, _u16(old[: len(old) - s]), new[p : len(new) - s])


def _minimal_edits(
    lines: Sequence[str], first: int, old: list[str], new: list[str]
) -> list[NextEdit]:
    """The smallest edits turning lines `first`.. (`old`) into `new`: one per changed line when
    the line count is kept, else one covering the changed lines."""
    i = 0
    while i < min(len(old), len(new)) and old[i] == new[i]:
        i += 1
    j = 0
    while j < min(len(old), len(new)) - i and old[-1 - j] == new[-1 - j]:
        j += 1
    old, new, first = old[i : len(old) - j], new[i : len(new) - j], first + i
    eol = lines[first][len(strip_terminator(lines[first])) :] if first < len(lines) else ""
    eol = eol or "\n"
    if len(old) == len(new):
        return [
            _line_edit(first + k, o, n)
            for k, (o, n) in enumerate(zip(old, new, strict=True))
            if o != n
        ]
    last = first + len(old) - 1
    if old and new:
        return [NextEdit(first, 0, last, _u16(old[-1]), eol.join(new))]
    if old:
        if last + 1 < len(lines):
            return [NextEdit(first, 0, last + 1, 0, "")]
        before = strip_terminator(lines[first - 1]) if first > 0 else ""
        return [NextEdit(max(first - 1, 0), _u16(before), last, _u16(old[-1]), "")]
    if first < len(lines):
        return [NextEdit(first, 0, first, 0, eol.join(new) + eol)]
    end = _u16(strip_terminator(lines[first - 1]))
    return [NextEdit(first - 1, end, first - 1, end, eol + eol.join(new))]
