"""A model's text made safe for ghost text, menus and terminals: no controls, escapes or bidi
overrides survive, visible text is untouched, lengths are capped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.core.sanitize import sanitize_suggestion, sanitize_terminal

ESC = "\x1b"
FORBIDDEN = (
    {chr(c) for c in range(0x20) if chr(c) not in "\t\n"}
    | {chr(c) for c in range(0x7F, 0xA0)}
    | {chr(c) for c in range(0x202A, 0x202F)}
    | {chr(c) for c in range(0x2066, 0x206A)}
    | {"\u200e", "\u200f", "\u061c"}
    | {chr(c) for c in range(0xD800, 0xE000)}
)

# Text rich in the troublesome pieces, so that hypothesis combines them often.
PIECES = st.sampled_from(
    [
        ESC, "[", "]", "\\", "\x07", "\x9c", "\x9b", "\x9d", "P", "52;c;", "2J", "31m", "\r",
        "\n", "\r\n", "\t", "\x00", "\x85", "\u202e", "\u2066", "\u200f", "\ud800", "é", "x",
        " ", ";", "(", "A" * 7,
    ]
)  # fmt: skip
HOSTILE = st.lists(PIECES | st.text(max_size=5), max_size=40).map("".join)
CODE = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("\t\néλ→"),
    max_size=300,
)


def test_an_osc_52_clipboard_write_is_removed_with_its_payload() -> None:
    text = f"x = 1{ESC}]52;c;ZWNobyBwd25lZA=={ESC}\\\ny = 2{ESC}]52;c;c2Vjb25k\x07"
    assert sanitize_terminal(text) == "x = 1\ny = 2"


def test_an_unterminated_osc_swallows_the_rest_like_a_terminal_would() -> None:
    assert sanitize_terminal(f"ok{ESC}]52;c;aGVsbG8=\nmore") == "ok"
    assert sanitize_terminal(f"ok{ESC}]0;title{ESC}[31mred") == "okred"


def test_csi_and_other_escapes_are_removed_whole() -> None:
    text = f"{ESC}[2J{ESC}[1;31mred{ESC}[0m {ESC}c{ESC}(Bdone{ESC}[?25l\x9b2Jx"
    assert sanitize_terminal(text) == "red donex"


def test_controls_bidi_and_nul_are_removed_and_line_breaks_normalised() -> None:
    text = "a\x00b\x07c\x85d\u202eevil\u202c\u2066i\u2069\u200f\r\ne\rf\tg\x7f"
    assert sanitize_terminal(text) == "abcdevili\ne\nf\tg"


def test_string_sequences_in_their_8_bit_form_are_removed() -> None:
    assert sanitize_terminal("a\x9d52;c;cGF5bG9hZA==\x9cb\x90qpayload\x9cc") == "abc"


def test_a_long_single_line_is_capped() -> None:
    assert sanitize_suggestion("x" * 1_000_000) == "x" * 1000
    assert len(sanitize_suggestion("x" * 1_000_000, max_line_chars=10**7)) == 20000


def test_a_long_line_ends_the_suggestion() -> None:
    text = "def f():\n    return " + "1 + " * 500 + "1\nprint(f())"
    second_line = ("    return " + "1 + " * 500)[:100]
    assert sanitize_suggestion(text, max_line_chars=100) == "def f():\n" + second_line


def test_the_total_cap_cuts_at_a_line_boundary() -> None:
    lines = [f"line_{i} = {i}" for i in range(100)]
    got = sanitize_suggestion("\n".join(lines), max_chars=100)
    assert got == "\n".join(lines[:9])  # the 10th line would end past 100
    assert len(got) <= 100


def test_ordinary_code_is_unchanged() -> None:
    code = 'def greet(name: str) -> str:\n\treturn f"héllo {name} → مرحبا"  # ok\n'
    assert sanitize_suggestion(code) == code
    assert sanitize_terminal(code) == code


@given(HOSTILE)
def test_no_forbidden_code_point_ever_survives(text: str) -> None:
    for clean in (sanitize_terminal(text), sanitize_suggestion(text)):
        assert not FORBIDDEN & set(clean)
        assert ESC not in clean


@given(HOSTILE)
def test_sanitising_twice_changes_nothing(text: str) -> None:
    once = sanitize_terminal(text)
    assert sanitize_terminal(once) == once
    capped = sanitize_suggestion(text, max_line_chars=8, max_chars=30)
    assert sanitize_suggestion(capped, max_line_chars=8, max_chars=30) == capped


@given(CODE)
def test_plain_code_is_never_changed(code: str) -> None:
    assert sanitize_terminal(code) == code
    assert sanitize_suggestion(code, max_line_chars=1000, max_chars=1000) == code


@given(
    st.lists(st.text(alphabet="ab \t\x1b[m\r\u202e", max_size=60), max_size=30).map("\n".join),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=0, max_value=200),
)
def test_caps_always_hold_and_keep_a_prefix(text: str, line_cap: int, total_cap: int) -> None:
    got = sanitize_suggestion(text, max_line_chars=line_cap, max_chars=total_cap)
    assert len(got) <= total_cap
    assert all(len(line) <= line_cap for line in got.split("\n"))
    assert sanitize_terminal(text).startswith(got)
