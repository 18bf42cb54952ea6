"""Whole, clean insertions through the real server: a suggestion never repeats what follows the
cursor — the closers an editor inserted in pairs, the rest of the line the model wrote again —
as ghost text or as the menu's edit, on one line or several."""

from __future__ import annotations

import re
from typing import Any

import pytest
from lsprotocol import types as lsp

from tests.e2e.conftest import Session, openai_options
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

KEY = {"OPENAI_API_KEY": "sk-test"}
LINE = "    total = sum()"
CURSOR = len("    total = sum(")
DOCUMENT = f"def order_total(items):\n{LINE}\n    return total\n"
MODEL = "\n        price * count\n        for price, count in items\n    )\n    return total\n"
WHOLE = "    total = sum(\n        price * count\n        for price, count in items\n    )"


def applied(text: str, line: str = LINE, cursor: int = CURSOR) -> str:
    return line[:cursor] + text + line[cursor:]


def applied_edit(item: lsp.CompletionItem, line: str = LINE, cursor: int = CURSOR) -> str:
    """What Neovim inserts for the item: its snippet text, lines after the first indented by
    the cursor line's indentation, over the edit's range."""
    assert isinstance(item.text_edit, lsp.TextEdit)
    text = re.sub(r"\\([\\$}])", r"\1", item.text_edit.new_text)  # the snippet's escapes
    first, *rest = text.split("\n")
    indent = line[: len(line) - len(line.lstrip())]
    new = "\n".join([first, *(indent + r for r in rest)])
    return line[: item.text_edit.range.start.character] + new + line[cursor:]


async def test_a_multi_line_suggestion_keeps_the_closer_after_the_cursor_single(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.default = Reply(text=MODEL)
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("orders.py", DOCUMENT)
    [ghost] = await s.inline(uri, 1, CURSOR)
    assert applied(ghost) == WHOLE
    [item] = (await s.menu(uri, 1, CURSOR)).items
    assert item.insert_text_format == lsp.InsertTextFormat.Snippet  # Neovim's capabilities
    assert applied_edit(item) == WHOLE


@pytest.mark.parametrize(
    ("line", "model", "whole"),
    [
        ("print(len())", "items)", "print(len(items))"),  # one of the two closers
        ("print(len())", "items))", "print(len(items))"),
        ('print(f"")', 'Hello, {who}")', 'print(f"Hello, {who}")'),
        ("print()", "format(total)", "print(format(total))"),  # a closer of its own
    ],
)
async def test_a_one_line_suggestion_keeps_the_closers_after_the_cursor_single(
    start_session: Any, openai_fake: FakeServer, line: str, model: str, whole: str
) -> None:
    cursor = line.index(")") if '"' not in line else line.index('"') + 1
    openai_fake.script.default = Reply(text=model)
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("show.py", f"{line}\n")
    [ghost] = await s.inline(uri, 0, cursor)
    assert applied(ghost, line, cursor) == whole
    [item] = (await s.menu(uri, 0, cursor)).items
    assert applied_edit(item, line, cursor) == whole
