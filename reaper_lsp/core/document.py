"""Open documents as lists of lines, edited in place by LSP-style changes in UTF-16 units.

Keeping lines (with their terminators) instead of one string makes an edit cost the lines it
touches plus a list shift, and lets context extraction walk outwards from the cursor line
without ever scanning the whole buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

_TERMINATORS = ("\r\n", "\n", "\r")


def split_lines(text: str) -> list[str]:
    """Split on LSP line breaks (LF, CRLF, CR) only, keeping the terminators.

    The result always has at least one element; the last one has no terminator (it is empty
    when `text` ends with a line break), so a cursor on the line after a final newline exists.
    """
    lines: list[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            lines.append(text[start : i + 1])
            start = i + 1
        elif ch == "\r":
            end = i + 2 if i + 1 < n and text[i + 1] == "\n" else i + 1
            lines.append(text[start:end])
            start = end
            i = end - 1
        i += 1
    lines.append(text[start:])
    return lines


def _split_lines_fast(text: str) -> list[str]:
    if "\r" not in text:
        parts = text.split("\n")
        return [p + "\n" for p in parts[:-1]] + [parts[-1]]
    return split_lines(text)


def strip_terminator(line: str) -> str:
    for term in _TERMINATORS:
        if line.endswith(term):
            return line[: -len(term)]
    return line


def indentation(line: str) -> str:
    """The spaces and tabs `line` starts with."""
    return line[: len(line) - len(line.lstrip(" \t"))]


def utf16_to_index(line: str, character: int) -> int:
    """Index into `line` of a UTF-16 column; past the end clamps, inside a pair rounds down."""
    if character <= 0:
        return 0
    if line.isascii():
        return min(character, len(line))
    units = 0
    for index, ch in enumerate(line):
        width = 2 if ord(ch) > 0xFFFF else 1
        if units + width > character:
            return index
        units += width
    return len(line)


def index_to_utf16(line: str, index: int) -> int:
    """UTF-16 column of a string index into `line`."""
    head = line[:index]
    if head.isascii():
        return len(head)
    return len(head) + sum(1 for ch in head if ord(ch) > 0xFFFF)


@dataclass(frozen=True, slots=True)
class Position:
    line: int
    character: int
    """UTF-16 code units, as LSP sends them."""


@dataclass(frozen=True, slots=True)
class TextEdit:
    """Replace the text from `start` to `end` (UTF-16 positions) with `text`: an edit the server
    asks the editor to make."""

    start: Position
    end: Position
    text: str


@dataclass(frozen=True, slots=True)
class Change:
    """One content change; `start`/`end` None means the whole document is replaced."""

    text: str
    start: Position | None = None
    end: Position | None = None


class Document:
    """One open text document."""

    __slots__ = ("language_id", "lines", "uri", "version")

    def __init__(self, uri: str, language_id: str, version: int, text: str) -> None:
        self.uri = uri
        self.language_id = language_id
        self.version = version
        self.lines: list[str] = _split_lines_fast(text)

    @property
    def text(self) -> str:
        """The whole text; costs O(size), so only for whole-document consumers."""
        return "".join(self.lines)

    def line_text(self, line: int) -> str:
        """A line without its terminator ("" past the end)."""
        if 0 <= line < len(self.lines):
            return strip_terminator(self.lines[line])
        return ""

    def clamp(self, position: Position) -> tuple[int, int]:
        """(line, string index) of a position, clamped into the document."""
        if position.line < 0:
            return 0, 0
        if position.line >= len(self.lines):
            last = len(self.lines) - 1
            return last, len(strip_terminator(self.lines[last]))
        text = strip_terminator(self.lines[position.line])
        return position.line, utf16_to_index(text, position.character)

    def apply(self, change: Change) -> None:
        if change.start is None or change.end is None:
            self.lines = _split_lines_fast(change.text)
            return
        start_line, start_index = self.clamp(change.start)
        end_line, end_index = self.clamp(change.end)
        if (end_line, end_index) < (start_line, start_index):
            start_line, start_index, end_line, end_index = (
                end_line,
                end_index,
                start_line,
                start_index,
            )
        head = self.lines[start_line][:start_index]
        tail = self.lines[end_line][end_index:]
        replacement = _split_lines_fast(head + change.text + tail)
        if end_line + 1 < len(self.lines):
            # `tail` kept line `end_line`'s terminator, so the split ends in an empty piece
            # that is really the start of the next, untouched line.
            replacement.pop()
        self.lines[start_line : end_line + 1] = replacement


class DocumentStore:
    """The open documents, by URI."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}

    def open(self, uri: str, language_id: str, version: int, text: str) -> Document:
        doc = Document(uri, language_id, version, text)
        self._docs[uri] = doc
        return doc

    def change(self, uri: str, version: int, changes: list[Change]) -> Document | None:
        doc = self._docs.get(uri)
        if doc is None:
            return None
        for change in changes:
            doc.apply(change)
        doc.version = version
        return doc

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def __iter__(self) -> Iterator[Document]:
        return iter(list(self._docs.values()))

    def __len__(self) -> int:
        return len(self._docs)
