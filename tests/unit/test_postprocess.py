"""Raw model text → the suggestion shown at the cursor."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.core.postprocess import is_complete, postprocess, wants_multiline
from reaper_lsp.core.types import CompletionContext, Multiline


def ctx(prefix: str, suffix: str = "\n", language: str = "python") -> CompletionContext:
    return CompletionContext(prefix, suffix, language, "a.py")


def test_single_line_stops_at_the_newline() -> None:
    c = ctx("x = ")
    assert postprocess("compute()\ny = 2\n", c, multiline=False) == "compute()"


def test_text_repeating_the_rest_of_the_line_is_removed() -> None:
    c = ctx('print("hello', '")\n')
    assert postprocess(' world")', c, multiline=False) == " world"
    c = ctx("foo(", ")\n")
    assert postprocess("a, b)", c, multiline=False) == "a, b"


def test_multiline_stops_at_the_end_of_the_block() -> None:
    c = ctx("def f(x):", "\n\nprint(f(1))\n")
    raw = "\n    y = x * 2\n    return y\n\ndef g():\n    pass\n"
    assert postprocess(raw, c, multiline=True) == "\n    y = x * 2\n    return y"


def test_closing_brace_is_kept_unless_the_suffix_has_it() -> None:
    assert (
        postprocess("\n  return 1;\n}\nfunction g() {}", ctx("function f() {"), multiline=True)
        == "\n  return 1;\n}"
    )
    assert (
        postprocess("\n  return 1;\n}\n", ctx("function f() {", "\n}\n"), multiline=True)
        == "\n  return 1;"
    )


def test_repeat_of_the_code_after_the_cursor_is_cut() -> None:
    c = ctx("def f():\n    ", "\n    return total\n")
    raw = "total = 1\n    return total\n"
    assert postprocess(raw, c, multiline=True) == "total = 1"


def test_markdown_fences_and_cursor_marker_are_stripped() -> None:
    c = ctx("x = ")
    assert postprocess("```python\n42<cursor>\n```", c, multiline=False) == "42"


def test_empty_whitespace_and_duplicate_of_line_above_give_nothing() -> None:
    c = ctx("total = 0\n")
    assert postprocess("", c, multiline=True) is None
    assert postprocess("   \n\t", c, multiline=True) is None
    assert postprocess("total = 0", c, multiline=True) is None
    c = ctx("total = 0\ntotal", "\n")
    assert postprocess(" = 0", c, multiline=False) is None


def test_model_repeating_the_line_start_is_trimmed() -> None:
    c = ctx("    return ")
    assert postprocess("    return value", c, multiline=False) == "value"


def test_multiline_auto_mode() -> None:
    assert wants_multiline(ctx("def f():"), Multiline.AUTO)
    assert wants_multiline(ctx("x\n    "), Multiline.AUTO)
    assert not wants_multiline(ctx("    return "), Multiline.AUTO)
    assert not wants_multiline(ctx("if (", "a) {\n"), Multiline.AUTO)
    assert wants_multiline(ctx("    return "), Multiline.ALWAYS)
    assert not wants_multiline(ctx("def f():"), Multiline.NEVER)


def test_is_complete_single_line() -> None:
    c = ctx("x = ")
    assert not is_complete("comp", c, multiline=False)
    assert is_complete("compute()\n", c, multiline=False)
    assert not is_complete("```python\n", c, multiline=False)


def test_is_complete_multiline_after_the_block_ends() -> None:
    c = ctx("def f():")
    assert not is_complete("\n    return 1\n", c, multiline=True)
    assert is_complete("\n    return 1\n\ndef g", c, multiline=True)
    assert is_complete("\n    return 1\ndef g():\n", c, multiline=True)


@given(
    raw=st.text(max_size=80),
    prefix=st.text(max_size=40),
    suffix=st.text(max_size=40),
    multiline=st.booleans(),
)
def test_result_is_none_or_visible_text(
    raw: str, prefix: str, suffix: str, multiline: bool
) -> None:
    c = ctx(prefix, suffix)
    out = postprocess(raw, c, multiline=multiline)
    if out is not None:
        assert out.strip()
        if out != out.rstrip():  # only a line of its own for the rest of the cursor's line
            assert c.line_suffix.strip() and not out.rsplit("\n", 1)[1].strip(" \t")
        if not multiline:
            assert "\n" not in out


# Whole insertions: what follows the cursor stays single, whatever the suggestion's shape.


def inserted(raw: str, before: str, after: str, *, multiline: bool) -> str:
    """The document around the cursor once the suggestion is inserted."""
    out = postprocess(raw, ctx(before, after), multiline=multiline)
    return before + (out or "") + after


def test_a_closer_the_editor_inserted_is_not_doubled() -> None:
    assert inserted("x)", "print(len(", "))\n", multiline=False) == "print(len(x))\n"
    assert inserted("a, b):", "def f(", "):\n", multiline=False) == "def f(a, b):\n"
    assert inserted('hello"', 'x = "', '"\n', multiline=False) == 'x = "hello"\n'
    assert inserted("0]", "items[", "]\n", multiline=False) == "items[0]\n"


def test_a_closer_the_suggestion_opened_itself_is_kept() -> None:
    assert inserted("foo(x)", "print(", ")\n", multiline=False) == "print(foo(x))\n"
    assert inserted("d['k']", "f(", ")\n", multiline=False) == "f(d['k'])\n"
    # Brackets inside a string are text, not code.
    assert inserted("'(')", "f(", ")\n", multiline=False) == "f('(')\n"


def test_a_multi_line_suggestion_ending_with_the_closers_leaves_them_on_their_own_line() -> None:
    before, after = "    total = sum(", ")\n    return total\n"
    raw = "\n        price * count\n        for price, count in items\n    )\n"
    assert inserted(raw, before, after, multiline=True) == (
        "    total = sum(\n        price * count\n        for price, count in items\n    )\n"
        "    return total\n"
    )
    js = inserted("\n  a: 1,\n  b: 2,\n});", "const o = f({", "});\n", multiline=True)
    assert js == "const o = f({\n  a: 1,\n  b: 2,\n});\n"


def test_a_multi_line_suggestion_that_rewrote_the_rest_of_the_line_keeps_its_first_line() -> None:
    # Its later lines would land before the `)` still after the cursor.
    assert inserted("a, b)\nprint(x)", "foo(", ")\n", multiline=True) == "foo(a, b)\n"
