"""Prefix/suffix extraction around the cursor."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.core.context import build_context
from reaper_lsp.core.document import Document, Position, index_to_utf16


def ctx(text: str, line: int, character: int, prefix: int = 8000, suffix: int = 2000):  # type: ignore[no-untyped-def]
    doc = Document("file:///a.py", "python", 1, text)
    return build_context(
        doc,
        Position(line, character),
        max_prefix_chars=prefix,
        max_suffix_chars=suffix,
        path="a.py",
    )


def test_cursor_splits_the_document() -> None:
    c = ctx("a = 1\nb = \nc = 3\n", 1, 4)
    assert c.prefix == "a = 1\nb = "
    assert c.suffix == "\nc = 3\n"
    assert (c.language, c.path, c.line_prefix, c.line_suffix) == ("python", "a.py", "b = ", "")


def test_budget_cuts_at_line_boundaries() -> None:
    text = "".join(f"line{i}\n" for i in range(100))
    c = ctx(text, 50, 3, prefix=20, suffix=15)
    assert c.prefix == "line48\nline49\nlin"
    assert c.suffix == "e50\nline51\n"


def test_emoji_and_cjk_use_utf16_columns() -> None:
    line = 'print("😀 你好 hello")'
    col = index_to_utf16(line, line.index('")'))
    c = ctx(line + "\n", 0, col)
    assert c.line_prefix == 'print("😀 你好 hello'
    assert c.line_suffix == '")'


def test_positions_past_the_end_are_clamped() -> None:
    assert ctx("abc", 9, 9).prefix == "abc"
    assert ctx("abc\n", 0, 99).line_suffix == ""


def test_huge_single_line_keeps_the_text_nearest_the_cursor() -> None:
    c = ctx("x" * 100_000 + "|" + "y" * 100_000, 0, 100_001, prefix=50, suffix=40)
    assert c.prefix == "x" * 49 + "|"
    assert c.suffix == "y" * 40


def test_cost_does_not_grow_with_the_buffer() -> None:
    small = Document("u", "python", 1, "".join(f"v{i} = {i}\n" for i in range(1_000)))
    big = Document("u", "python", 1, "".join(f"v{i} = {i}\n" for i in range(400_000)))

    def cost(doc: Document) -> float:
        line = len(doc.lines) // 2
        start = time.perf_counter()
        for _ in range(200):
            build_context(
                doc, Position(line, 3), max_prefix_chars=8000, max_suffix_chars=2000, path=""
            )
        return time.perf_counter() - start

    cost(small)
    # Generous bound: O(buffer) would be hundreds of times slower on the big document.
    assert cost(big) < cost(small) * 20 + 0.05


@given(
    st.text(alphabet=st.sampled_from("ab😀你\n\r \t"), max_size=200),
    st.integers(0, 30),
    st.integers(0, 60),
    st.integers(0, 80),
    st.integers(0, 80),
)
def test_prefix_and_suffix_are_adjacent_slices_within_budget(
    text: str, line: int, column: int, pbudget: int, sbudget: int
) -> None:
    c = ctx(text, line, column, prefix=pbudget, suffix=sbudget)
    assert len(c.prefix) <= pbudget and len(c.suffix) <= sbudget
    joined = c.prefix + c.suffix
    assert joined in text
    assert text.index(c.prefix + c.suffix) >= 0
