"""Documents edited by LSP changes in UTF-16 units."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.core.document import (
    Change,
    Document,
    Position,
    index_to_utf16,
    split_lines,
    utf16_to_index,
)


def test_split_lines_keeps_terminators_and_a_last_line() -> None:
    assert split_lines("a\nb\r\nc\rd") == ["a\n", "b\r\n", "c\r", "d"]
    assert split_lines("a\n") == ["a\n", ""]
    assert split_lines("") == [""]
    assert split_lines("a\u2028b") == ["a\u2028b"]  # not an LSP line break


def test_utf16_columns() -> None:
    line = "😀a你"
    assert utf16_to_index(line, 2) == 1
    assert utf16_to_index(line, 1) == 0  # inside the surrogate pair: round down
    assert index_to_utf16(line, 3) == 4
    assert utf16_to_index(line, 99) == 3


def test_incremental_edits() -> None:
    doc = Document("u", "python", 1, "def f():\n    return 1\n")
    doc.apply(Change("2", Position(1, 11), Position(1, 12)))
    assert doc.text == "def f():\n    return 2\n"
    doc.apply(Change("\n    x = 0", Position(0, 8), Position(0, 8)))
    assert doc.text == "def f():\n    x = 0\n    return 2\n"
    doc.apply(Change("", Position(0, 8), Position(2, 0)))
    assert doc.text == "def f():    return 2\n"
    doc.apply(Change("whole\n"))
    assert doc.lines == ["whole\n", ""]


def test_edit_after_emoji_uses_utf16() -> None:
    doc = Document("u", "python", 1, "x = '😀'\n")
    doc.apply(Change("!", Position(0, 7), Position(0, 7)))
    assert doc.text == "x = '😀!'\n"


ALPHABET = st.sampled_from(["a", "b", "\n", "\r\n", "😀", "你", " "])


@given(
    st.lists(ALPHABET, max_size=30).map("".join),
    st.lists(
        st.tuples(
            st.integers(0, 40), st.integers(0, 40), st.lists(ALPHABET, max_size=5).map("".join)
        ),
        max_size=8,
    ),
)
def test_edits_match_editing_the_utf16_string(text: str, edits: list[tuple[int, int, str]]) -> None:
    """Apply edits both to a Document and to a plain UTF-16 model; the texts must agree."""
    doc = Document("u", "python", 1, text)
    model = text
    for a, b, new in edits:
        units = model.encode("utf-16-le")
        lo, hi = sorted((a, b))
        lo = min(lo, len(units) // 2)
        hi = min(hi, len(units) // 2)
        start, end = _pos(model, lo), _pos(model, hi)
        doc.apply(Change(new, start, end))
        model = _index_text(model, start) + new + model[_index(model, end) :]
        model = model  # for clarity in failures
        assert doc.text == model


def _pos(text: str, unit: int) -> Position:
    """The LSP position of a UTF-16 offset, rounded down off surrogate pairs and line breaks."""
    lines = split_lines(text)
    for number, line in enumerate(lines):
        width = len(line.encode("utf-16-le")) // 2
        if unit < width or number == len(lines) - 1:
            body = line.rstrip("\r\n")
            return Position(number, index_to_utf16(body, utf16_to_index(body, unit)))
        unit -= width
    raise AssertionError


def _index(text: str, pos: Position) -> int:
    lines = split_lines(text)
    return sum(len(line) for line in lines[: pos.line]) + utf16_to_index(
        lines[pos.line].rstrip("\r\n"), pos.character
    )


def _index_text(text: str, pos: Position) -> str:
    return text[: _index(text, pos)]
