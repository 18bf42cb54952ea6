"""The pure parts of chat: history budgets, finding what a code action is about, turning an
answer into edits, and the terminal printer that sanitises a stream split anywhere."""

from __future__ import annotations

import io

import pytest

from reaper_lsp.cli.chat import _Printer, parse_lines
from reaper_lsp.core.actions import (
    Offer,
    action_edit,
    block_around,
    chat_answer_lines,
    code_of,
    marker_question,
    offers,
    selected_lines,
)
from reaper_lsp.core.document import Document, Position, TextEdit
from reaper_lsp.core.sanitize import open_escape
from reaper_lsp.providers.base import ChatMessage
from reaper_lsp.services.conversations import Conversations, fit


def turns(*texts: str) -> list[ChatMessage]:
    return [ChatMessage("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(texts)]


def test_fit_keeps_the_newest_turns_and_starts_with_a_question() -> None:
    history = turns("q1" * 10, "a1" * 10, "q2", "a2")
    assert fit(history, 100) == history
    assert fit(history, 30) == history[2:]
    # room for an answer but not its question: the orphan answer is dropped as well
    assert fit(history, 23) == history[2:]
    assert fit(history, 3) == []


def test_conversation_budget_never_drops_the_system_prompt_or_the_question() -> None:
    store = Conversations(budget=50, clock=lambda: 1.0)
    store.get("c").system = "be brief"
    store.record("c", "old question " * 3, "old answer " * 3)
    store.record("c", "q2", "a2")
    current = ChatMessage("user", "a very long new question " * 10)
    sent = store.messages("c", current)
    assert sent[0] == ChatMessage("system", "be brief")
    assert sent[-1] == current
    assert len(sent) == 2  # no history fits next to that question
    short = store.messages("c", ChatMessage("user", "q3"))
    assert [m.content for m in short] == ["be brief", "q2", "a2", "q3"]


def test_conversations_list_reset_and_round_trip() -> None:
    store = Conversations(budget=1000, clock=lambda: 5.0)
    store.record("a", "first   question\nspread", "answer")
    store.record("b", "other", "x")
    assert [s["conversationId"] for s in store.summaries()] == ["b", "a"]
    assert store.summaries()[1]["title"] == "first question spread"
    saved = store.to_json("a")
    other = Conversations(budget=1000)
    assert other.load(saved, "a") == "a"
    assert other.get("a").turns == store.get("a").turns
    assert other.load({"turns": 3}, "a") is None
    assert store.reset("a") and not store.reset("a")


def test_conversations_forget_the_least_recently_used_beyond_the_limit() -> None:
    store = Conversations(budget=100, limit=2)
    store.record("a", "q", "x")
    store.record("b", "q", "x")
    store.get("a")
    store.record("c", "q", "x")
    assert {s["conversationId"] for s in store.summaries()} == {"a", "c"}


@pytest.mark.parametrize(
    ("line", "question"),
    [
        ("# >>> how do I sort this?", "how do I sort this?"),
        ("    // >>> why", "why"),
        ("-- >>>what", "what"),
        ("<!-- >>> in html -->", "in html"),
        (";; >>> lisp", "lisp"),
        (">>> bare", "bare"),
        ("# >>>", None),
        ("# how >>> not first", None),
        ("x = 1  # >>> trailing", None),
    ],
)
def test_marker_question(line: str, question: str | None) -> None:
    assert marker_question(line, ">>>") == question


PY = (
    "import os\n\n\nclass A:\n    def f(self):\n        return 1\n\n"
    "    def g(self):\n        pass\n\nx = 1\n"
)


def test_block_around_finds_the_enclosing_definition() -> None:
    lines = PY.splitlines(keepends=True)
    assert block_around(lines, 5) == (4, 5)
    assert block_around(lines, 8) == (7, 8)
    assert block_around(lines, 3) == (3, 8)
    assert block_around(lines, 0) == (0, 0)
    assert block_around(lines, 10) == (10, 10)  # after the class: no definition around it


def test_block_around_includes_a_closing_brace() -> None:
    lines = "function f() {\n  return 1;\n}\nf();\n".splitlines(keepends=True)
    assert block_around(lines, 1) == (0, 2)


def test_selection_lines_and_line_wise_selections() -> None:
    doc = Document("file:///a.py", "python", 1, PY)
    assert selected_lines(doc, Position(4, 0), Position(6, 0)) == (4, 5)
    assert selected_lines(doc, Position(4, 3), Position(4, 3)) == (4, 5)
    assert selected_lines(doc, Position(5, 3), Position(5, 4)) == (4, 5)  # Helix's cursor
    assert selected_lines(doc, Position(5, 8), Position(5, 14)) == (5, 5)


def test_offer_fix_only_with_diagnostics_and_chat_only_on_a_marker() -> None:
    doc = Document("file:///a.py", "python", 7, "x = 1\n# >>> what now?\n")
    here = Position(1, 2)
    titles = [a.title for a in offers(doc, here, here, diagnosed=False, marker=">>>")]
    assert titles[0] == "Reaper: Answer: what now?"
    assert "Reaper: Fix" not in titles
    diagnosed = offers(doc, here, here, diagnosed=True, marker=">>>")
    assert [a.action for a in diagnosed][:2] == ["chat", "fix"]
    assert offers(doc, here, here, diagnosed=False, marker="")[0].action == "explain"


def test_code_of_takes_the_first_fenced_block() -> None:
    assert code_of("Sure:\n```python\nx = 2\n```\nmore\n```\ny\n```") == "x = 2"
    assert code_of("x = 3\n") == "x = 3"


def test_chat_answer_prose_becomes_comments_and_code_stays_code() -> None:
    answer = "First:\n```js\nlet y = x.sort();\n```\nThen done."
    assert chat_answer_lines(answer, "javascript", "  ") == [
        "  // First:",
        "  let y = x.sort();",
        "  // Then done.",
    ]


def test_an_edit_on_the_last_line_without_a_newline_keeps_it_that_way() -> None:
    doc = Document("file:///a.lua", "lua", 1, "local x = 1\n-- >>> double it")
    edit = action_edit(Offer("chat", 1, 1, "double it"), doc, "```lua\nx = x * 2\n```")
    assert edit == TextEdit(Position(1, 0), Position(1, 16), "x = x * 2")


def test_explain_is_a_comment_block_in_the_files_syntax_at_its_indent() -> None:
    doc = Document("file:///a.py", "python", 1, PY)
    edit = action_edit(Offer("explain", 4, 5), doc, "Returns one.\n\nAlways.")
    assert edit.start == edit.end == Position(4, 0)
    assert edit.text == "    # Returns one.\n    #\n    # Always.\n"


def test_the_printer_removes_escape_sequences_split_anywhere() -> None:
    text = "a\x1b]52;c;QUJD\x07b\x1b[2Jc\r\nd\x9b31me\x1b"
    for size in range(1, 8):
        out = io.StringIO()
        printer = _Printer(out)
        for i in range(0, len(text), size):
            printer.write(text[i : i + size])
        printer.finish()
        assert out.getvalue() == "abc\nde\n", size


def test_open_escape() -> None:
    assert open_escape("abc") == -1
    assert open_escape("ab\x1b") == 2
    assert open_escape("ab\x1b[3") == 2
    assert open_escape("ab\x1b[3m") == -1
    assert open_escape("a\x1b]52;payload") == 1
    assert open_escape("a\x1b]52;payload\x07") == -1


def test_parse_lines() -> None:
    assert parse_lines("2:3", 5) == (1, 2)
    assert parse_lines("4", 5) == (3, 3)
    assert "lines are 1 to 5" in str(parse_lines("4:9", 5))
    assert "expected A:B" in str(parse_lines("x", 5))
