"""The completion-menu item: whole suggestions for snippet clients, escaping that round-trips
through the LSP snippet grammar, edits that replace the typed word, and no control bytes."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lsprotocol import types as lsp
from lsprotocol.converters import get_converter
from pytest_lsp import client_capabilities

from reaper_lsp.lsp.menu import (
    LABEL_WIDTH,
    TRIGGER_CHARACTERS,
    completion_item,
    cuts_at_parenthesis,
    escape_snippet,
    relative_lines,
    snippet_support,
)

CONVERTER = get_converter()


def parse_snippet_text(snippet: str) -> str:
    """The text an LSP snippet made only of text nodes stands for, read by the grammar of the
    LSP specification: `\\` escapes `$`, `}` and `\\`; any other backslash is literal; an
    unescaped `$` would open a tabstop or variable, which these snippets must never contain."""
    out: list[str] = []
    i = 0
    while i < len(snippet):
        ch = snippet[i]
        if ch == "\\" and i + 1 < len(snippet) and snippet[i + 1] in "$}\\":
            out.append(snippet[i + 1])
            i += 2
            continue
        assert ch != "$", f"unescaped $ at {i} in {snippet!r}"
        out.append(ch)
        i += 1
    return "".join(out)


def item(
    line: str, character: int, text: str, *, snippets: bool, row: int = 3
) -> lsp.CompletionItem:
    found = completion_item(
        line, lsp.Position(row, character), text, "openai", "gpt-4o-mini", snippets=snippets
    )
    assert found is not None
    return found


def edit(found: lsp.CompletionItem) -> lsp.TextEdit:
    assert isinstance(found.text_edit, lsp.TextEdit)
    return found.text_edit


def test_multi_word_suggestion_after_a_dot_is_one_snippet_inserted_at_the_cursor() -> None:
    found = item("        self.", 13, "height = height", snippets=True)
    assert found.insert_text_format == lsp.InsertTextFormat.Snippet
    assert edit(found).new_text == "height = height"
    assert edit(found).range == lsp.Range(lsp.Position(3, 13), lsp.Position(3, 13))
    assert found.label == "height = height"
    assert found.filter_text == "height = height"


def test_plain_text_when_the_client_has_no_snippets() -> None:
    found = item("        self.", 13, "total = a + $b", snippets=False)
    assert found.insert_text_format == lsp.InsertTextFormat.PlainText
    assert edit(found).new_text == "total = a + $b"


def test_the_typed_word_is_replaced_by_word_plus_suggestion() -> None:
    found = item("    retu", 8, "rn name.upper()", snippets=True)
    assert edit(found).range == lsp.Range(lsp.Position(3, 4), lsp.Position(3, 8))
    assert edit(found).new_text == "return name.upper()"
    assert found.label == "return name.upper()"
    assert found.filter_text is not None and found.filter_text.startswith("retu")


def test_positions_are_utf16_across_astral_characters() -> None:
    line = "s = '😀' + nam"  # the emoji is two UTF-16 units
    end = len(line) + 1
    found = item(line, end, "e.title()", snippets=True)
    assert edit(found).range == lsp.Range(lsp.Position(3, end - 3), lsp.Position(3, end))
    assert edit(found).new_text == "name.title()"


def test_snippet_special_characters_are_escaped() -> None:
    found = item("x = ", 4, "f'${a}' + '\\\\'", snippets=True)
    assert edit(found).new_text == "f'\\${a\\}' + '\\\\\\\\'"
    assert parse_snippet_text(edit(found).new_text) == "f'${a}' + '\\\\'"


def test_snippet_lines_are_relative_to_the_cursor_line_indentation() -> None:
    found = item("    return ", 11, "[\n        1,\n\n        2,\n    ]", snippets=True)
    assert edit(found).new_text == "[\n    1,\n\n    2,\n]"
    assert found.insert_text_mode == lsp.InsertTextMode.AdjustIndentation


def test_snippet_stops_before_a_line_that_leaves_the_cursor_block() -> None:
    found = item("    x = ", 8, "1\n    y = 2\n\ndef g():\n    pass", snippets=True)
    assert edit(found).new_text == "1\ny = 2"


def test_plain_text_keeps_the_suggestion_as_it_is() -> None:
    text = "1\n    y = 2\n\ndef g():\n    pass"
    found = item("    x = ", 8, text, snippets=False)
    assert edit(found).new_text == text
    assert found.insert_text_mode == lsp.InsertTextMode.AsIs


def test_suggestion_starting_on_a_new_line_is_labelled_by_its_first_code() -> None:
    found = item("def f(x):", 9, "\n    return x * 2", snippets=True)
    assert found.label == "return x * 2"
    assert edit(found).new_text == "\n    return x * 2"


def test_crlf_becomes_lf_and_control_characters_are_dropped() -> None:
    found = item("x = ", 4, "a\x00b\r\n\tc\x1b[0m\x7f", snippets=False)
    assert edit(found).new_text == "ab\n\tc[0m"


def test_nothing_to_insert_gives_no_item() -> None:
    position = lsp.Position(0, 4)
    assert completion_item("x = ", position, "", "local", snippets=True) is None
    assert completion_item("x = ", position, " \n\x00 ", "local", snippets=False) is None
    # A snippet whose only line after the cursor leaves the block has nothing left either.
    assert completion_item("    x", position, "\n\ndef g():", "local", snippets=True) is None


def test_item_sorts_first_is_preselected_and_names_the_provider() -> None:
    found = item("x = ", 4, "1", snippets=True)
    assert found.sort_text == "0000"
    assert found.preselect is True
    assert found.detail == "reaper-lsp · openai (gpt-4o-mini)"
    bare = completion_item("x = ", lsp.Position(0, 4), "1", "local", snippets=True)
    assert bare is not None and bare.detail == "reaper-lsp · local"


def test_long_first_line_is_cut_in_the_label_only() -> None:
    text = "f(" + ", ".join(f"arg{i}" for i in range(40)) + ")"
    found = item("x = ", 4, text, snippets=False)
    assert len(found.label) == LABEL_WIDTH
    assert edit(found).new_text == text


def test_documentation_shows_the_whole_suggestion_even_with_backticks() -> None:
    found = item("s = ", 4, '"""```py\nx\n```"""', snippets=True)
    assert isinstance(found.documentation, lsp.MarkupContent)
    assert found.documentation.value == '````\n"""```py\nx\n```"""\n````'


def test_trigger_characters_never_include_whitespace() -> None:
    assert not [c for c in TRIGGER_CHARACTERS if c.isspace()]


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("neovim@v0.11.0", True),
        ("neovim@v0.7.0", False),
        ("emacs", False),
        ("visual_studio_code", True),
    ],
)
def test_snippet_support_is_read_from_the_client_capabilities(client: str, expected: bool) -> None:
    assert snippet_support(client_capabilities(client)) is expected


def test_no_capabilities_means_no_snippets() -> None:
    assert snippet_support(None) is False
    assert snippet_support(lsp.ClientCapabilities()) is False


@given(st.text())
def test_escaped_snippet_parses_back_to_the_text(text: str) -> None:
    assert parse_snippet_text(escape_snippet(text)) == text


ONE_LINE = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1)


@given(
    indent=st.sampled_from(["", "    ", "\t\t"]),
    before=st.text(st.characters(blacklist_categories=("Cc", "Cs"))),
    text=ONE_LINE.filter(lambda t: bool(t.strip())),
)
def test_snippet_and_plain_items_insert_the_same_line(indent: str, before: str, text: str) -> None:
    line = indent + before
    character = len(line.encode("utf-16-le")) // 2
    snippet = item(line, character, text, snippets=True)
    plain = item(line, character, text, snippets=False)
    assert parse_snippet_text(edit(snippet).new_text) == edit(plain).new_text
    assert edit(snippet).range == edit(plain).range


@given(
    indent=st.sampled_from(["", "  ", "    ", "\t"]),
    lines=st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs"))), min_size=1),
)
def test_relative_lines_re_indented_by_the_client_give_back_the_kept_lines(
    indent: str, lines: list[str]
) -> None:
    text = "\n".join([lines[0], *(indent + line for line in lines[1:])])
    kept = relative_lines(text, indent).split("\n")
    # What a snippet engine inserts: every line after the first indented by the cursor line.
    reindented = [kept[0], *((indent + line) if line else "" for line in kept[1:])]
    original = text.split("\n")[: len(kept)]
    # The first line is the cursor's own: kept as it is, blank or not.
    assert reindented == [original[0], *(line if line.strip() else "" for line in original[1:])]


@given(st.text(), st.text(), st.text())
def test_no_string_in_the_item_has_a_control_character(line: str, text: str, model: str) -> None:
    position = lsp.Position(0, len(line.encode("utf-16-le", "surrogatepass")) // 2)
    for snippets in (True, False):
        found = completion_item(line, position, text, "openai", model, snippets=snippets)
        if found is None:
            continue
        encoded = json.dumps(CONVERTER.unstructure(found))
        decoded = json.loads(encoded)
        for value in _strings(decoded):
            bad = [c for c in value if c not in "\t\n" and unicodedata.category(c) == "Cc"]
            assert not bad, (value, bad)
        assert decoded["sortText"] == "0000"


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def applied(line: str, character: int, found: lsp.CompletionItem, *, snippets: bool) -> str:
    """The cursor's line once the client applied the item: the edit's text (a snippet's lines
    re-indented by the cursor line's indentation) in place of its range."""
    new = edit(found).new_text
    if snippets:
        indent = line[: len(line) - len(line.lstrip())]
        first, *rest = parse_snippet_text(new).split("\n")
        new = "\n".join([first, *((indent + r) if r else indent for r in rest)])
    start = edit(found).range.start.character
    return line[:start] + new + line[character:]


@pytest.mark.parametrize("snippets", [True, False])
def test_the_closers_after_the_cursor_stay_single_and_on_their_own_line(snippets: bool) -> None:
    line = "    total = sum()"
    text = "\n        price * count\n        for price, count in items\n    "
    found = item(line, 16, text, snippets=snippets)
    assert applied(line, 16, found, snippets=snippets) == (
        "    total = sum(\n        price * count\n        for price, count in items\n    )"
    )


ALE_CAPABILITIES = {  # what ALE 3.3's ale#lsp#message#Initialize sends (autoload/ale/lsp.vim)
    "workspace": {
        "applyEdit": False,
        "didChangeConfiguration": {"dynamicRegistration": False},
        "symbol": {"dynamicRegistration": False},
        "workspaceFolders": False,
        "configuration": False,
    },
    "textDocument": {
        "synchronization": {"dynamicRegistration": False, "willSave": False,
                            "willSaveWaitUntil": False, "didSave": True},
        "completion": {
            "dynamicRegistration": False,
            "completionItem": {"snippetSupport": False, "commitCharactersSupport": False,
                               "documentationFormat": ["plaintext"], "deprecatedSupport": False,
                               "preselectSupport": False},
            "contextSupport": False,
        },
        "hover": {"dynamicRegistration": False, "contentFormat": ["plaintext"]},
    },
}  # fmt: skip


def test_ale_is_recognised_by_its_capabilities_and_no_other_client_is() -> None:
    ale = CONVERTER.structure(ALE_CAPABILITIES, lsp.ClientCapabilities)
    assert cuts_at_parenthesis(ale, "")
    assert not cuts_at_parenthesis(ale, "vim-lsp/1.0")  # a client that names itself is not ALE
    for client in ("neovim", "visual_studio_code", "emacs"):
        assert not cuts_at_parenthesis(client_capabilities(client), "")
    assert not cuts_at_parenthesis(None, "")


def test_for_ale_the_text_after_the_first_parenthesis_comes_as_an_additional_edit() -> None:
    line = "    x = pri"
    found = completion_item(
        line, lsp.Position(5, 11), "nt(a, b)", "local", snippets=False, rest_after_parenthesis=True
    )
    assert found is not None
    assert edit(found).new_text == "print" and edit(found).range.start.character == 8
    [rest] = found.additional_text_edits or []
    # Right after what ALE inserted, in the buffer as it is then (byte columns).
    assert rest.range == lsp.Range(lsp.Position(5, 13), lsp.Position(5, 13))
    assert rest.new_text == "(a, b)"
    # What the text is without a parenthesis needs nothing more.
    plain = completion_item(
        line, lsp.Position(5, 11), "nt_all", "local", snippets=False, rest_after_parenthesis=True
    )
    assert plain is not None and plain.additional_text_edits is None
    assert edit(plain).new_text == "print_all"


def test_for_ale_the_lines_after_the_first_come_as_the_additional_edit() -> None:
    """Vim would keep them inside the cursor's line, as NULs; ALE's edit makes real lines."""
    found = completion_item(
        "    é", lsp.Position(2, 5), ":\n    print(x)", "local", snippets=False,
        rest_after_parenthesis=True,
    )  # fmt: skip
    assert found is not None and edit(found).new_text == "é:"
    [rest] = found.additional_text_edits or []
    assert rest.range.start == lsp.Position(2, len("    é:".encode()))  # UTF-8 bytes
    assert rest.new_text == "\n    print(x)"


def test_for_ale_a_text_starting_on_the_next_line_is_cut_at_its_parenthesis() -> None:
    """Nothing before its line break could be inserted: the column counts through it."""
    found = completion_item(
        "def f():", lsp.Position(0, 8), "\n    print(x)", "local", snippets=False,
        rest_after_parenthesis=True,
    )  # fmt: skip
    assert found is not None and edit(found).new_text == "\n    print"
    [rest] = found.additional_text_edits or []
    assert rest.range.start == lsp.Position(0, len("def f():\n    print"))
