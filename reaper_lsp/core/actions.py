"""Code actions as text: which lines an action is about, what it offers, the prompt it sends, and
the edit made from the answer. Pure: documents and text in, prompts and `TextEdit`s out.

Actions: Explain (a comment above the code), Fix (the lines replaced, from the diagnostics), Add
docstring, Write tests (into a test file), and in-buffer chat (a comment line starting with the
`[chat] marker` is replaced by the answer).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from reaper_lsp.core.document import (
    Document,
    Position,
    TextEdit,
    indentation,
    index_to_utf16,
    strip_terminator,
)
from reaper_lsp.core.prompts import comment_line

SYSTEM = (
    "You are a programming assistant inside a text editor. Your answer is inserted into the "
    "user's file as it is, so follow the requested format exactly and be brief."
)
TITLES = {
    "explain": "Reaper: Explain",
    "fix": "Reaper: Fix",
    "docstring": "Reaper: Add docstring",
    "tests": "Reaper: Write tests",
    "chat": "Reaper: Answer",
}
MAX_FILE_CHARS = 20_000
"""How much of a file goes into a prompt (a chat's attachment, a code action's context)."""
WRAP = 88
_DEFINITION = re.compile(
    r"\s*(?:export\s+|pub(?:\(\w+\))?\s+|public\s+|private\s+|static\s+|async\s+)*"
    r"(?:def|class|function|fn|func|fun|sub|impl|interface|struct|enum|local\s+function)\b"
)
_COMMENT_OPENERS = ("<!--", "//", "--", "/*", "#", ";", "%", '"', "*")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class Offer:
    """One action offered on lines `first`..`last` (0-based, inclusive)."""

    action: str
    first: int
    last: int
    question: str = ""

    @property
    def title(self) -> str:
        title = TITLES[self.action]
        return f"{title}: {self.question[:50]}" if self.action == "chat" else title


# -- what to offer ---------------------------------------------------------------------------


def selected_lines(doc: Document, start: Position, end: Position) -> tuple[int, int]:
    """The whole lines a selection covers; a cursor is the enclosing definition (so is a
    one-character selection: Helix's cursor is one)."""
    first, last = start.line, end.line
    if first == last and end.character - start.character <= 1:
        return block_around(doc.lines, first)
    if last > first and end.character == 0:
        last -= 1  # a line-wise selection ends at the start of the next line
    bottom = len(doc.lines) - 1
    return min(first, bottom), min(last, bottom)


def block_around(lines: Sequence[str], line: int) -> tuple[int, int]:
    """The function or class around `line` (indentation decides where it ends), or the line
    itself when there is none."""
    line = min(max(0, line), len(lines) - 1)
    start = next((i for i in range(line, -1, -1) if _DEFINITION.match(lines[i])), None)
    if start is None:
        return line, line
    indent = indentation(lines[start])
    end = start
    for i in range(start + 1, len(lines)):
        text = strip_terminator(lines[i])
        if not text.strip():
            continue
        if len(indentation(text)) <= len(indent):
            if text.strip()[:1] in ("}", ")", "]") or text.strip() == "end":
                end = i  # the closing line belongs to the block
            break
        end = i
    if end < line:
        return line, line
    return start, end


def marker_question(line: str, marker: str) -> str | None:
    """The question of an in-buffer chat line (`# >>> how do I…`), or None."""
    text = line.strip()
    for opener in _COMMENT_OPENERS:
        if text.startswith(opener):
            text = text[len(opener) :].lstrip(opener[-1]).strip()
            break
    if not marker or not text.startswith(marker):
        return None
    question = text[len(marker) :].strip()
    for closer in ("-->", "*/"):
        question = question.removesuffix(closer).strip()
    return question or None


def offers(
    doc: Document, start: Position, end: Position, *, diagnosed: bool, marker: str
) -> list[Offer]:
    """The actions for a selection (or the cursor) in `doc`: Fix only when the editor sent
    diagnostics, the in-buffer chat first when a selected line asks a question."""
    first, last = selected_lines(doc, start, end)
    wanted = ["explain", "docstring", "tests"]
    if diagnosed:
        wanted.insert(0, "fix")
    found = [Offer(name, first, last) for name in wanted]
    lo, hi = sorted((start.line, end.line))
    for i in range(lo, min(hi, len(doc.lines) - 1) + 1):
        question = marker_question(doc.line_text(i), marker)
        if question is not None:
            found.insert(0, Offer("chat", i, i, question))
            break
    return found


# -- prompts ---------------------------------------------------------------------------------


def attach_file(doc: Document, name: str, around: int | None = None) -> str:
    """`doc` as a prompt attachment, at most `MAX_FILE_CHARS` of it: a window centred on line
    `around` when the file is longer (so the lines asked about stay in view)."""
    text = doc.text
    if len(text) > MAX_FILE_CHARS and around is not None:
        start = max(0, len("".join(doc.lines[:around])) - MAX_FILE_CHARS // 2)
        text = text[start : start + MAX_FILE_CHARS]
    return f"File {name}:\n```\n{text[:MAX_FILE_CHARS]}\n```"


def _instruction(offer: Offer, diagnostics: Sequence[str], tests_path: str) -> str:
    if offer.action == "explain":
        return (
            "Explain what the selected code does and anything surprising about it, in a few "
            "sentences of plain prose: no code blocks, no headings, no lists. The answer becomes "
            "a comment above the code."
        )
    if offer.action == "fix":
        problems = "\n".join(diagnostics) or "(none reported: find the bug)"
        return (
            f"Fix the selected code. Problems reported:\n{problems}\nReply with the corrected "
            "code for exactly the selected lines, in one fenced code block, nothing else."
        )
    if offer.action == "docstring":
        return (
            "Add a docstring (or this language's documentation comment) to the selected code. "
            "Reply with the selected lines with the documentation added and nothing else "
            "changed, in one fenced code block, nothing else."
        )
    if offer.action == "tests":
        return (
            f"Write unit tests for the selected code, to go into {tests_path}. Reply with the "
            "test code only (imports included), in one fenced code block, nothing else."
        )
    return (
        f"In a comment on line {offer.first + 1} the user asks: {offer.question}\nAnswer "
        "briefly. Prose becomes comment lines; code in a fenced code block is inserted as "
        "code in place of the question."
    )


def action_prompt(
    offer: Offer, doc: Document, name: str, diagnostics: Sequence[str] = (), tests_path: str = ""
) -> str:
    """The user message for one action: the instruction, the selected lines, the file."""
    code = "".join(doc.lines[offer.first : offer.last + 1]).rstrip("\n")
    where = f"lines {offer.first + 1}-{offer.last + 1} of {name} ({doc.language_id})"
    ask = _instruction(offer, diagnostics, tests_path)
    return (
        f"{ask}\n\nSelected ({where}):\n```\n{code}\n```\n\n{attach_file(doc, name, offer.first)}"
    )


# -- answers into text -----------------------------------------------------------------------


def code_of(answer: str) -> str:
    """The first fenced code block of an answer, else the whole answer."""
    found = _FENCE.search(answer)
    return (found.group(1) if found else answer).strip("\n")


def as_comment(answer: str, language: str, indent: str) -> list[str]:
    """Prose as comment lines in the file's syntax, wrapped, at `indent`."""
    out: list[str] = []
    for paragraph in answer.strip().splitlines():
        pieces = textwrap.wrap(paragraph, WRAP - len(indent)) or [""]
        for piece in pieces:
            out.append(indent + comment_line(language, piece).rstrip())
    return out


def reindent(code: str, indent: str) -> list[str]:
    """`code` moved to `indent` (its own common indentation removed first)."""
    return [indent + line if line.strip() else "" for line in textwrap.dedent(code).split("\n")]


def chat_answer_lines(answer: str, language: str, indent: str) -> list[str]:
    """An in-buffer chat answer: prose as comments, fenced code as code."""
    out: list[str] = []
    pos = 0
    for block in _FENCE.finditer(answer):
        prose = answer[pos : block.start()]
        if prose.strip():
            out += as_comment(prose, language, indent)
        out += reindent(block.group(1).rstrip("\n"), indent)
        pos = block.end()
    if answer[pos:].strip():
        out += as_comment(answer[pos:], language, indent)
    return out


def replace_lines(doc: Document, first: int, last: int, new: Sequence[str]) -> TextEdit:
    """Lines `first`..`last` replaced by `new` (terminators kept as the document has them)."""
    if last + 1 < len(doc.lines):
        end = Position(last + 1, 0)
        text = "".join(line + "\n" for line in new)
    else:  # the document's last line has no line after it to end on
        tail = doc.line_text(last)
        end = Position(last, index_to_utf16(tail, len(tail)))
        text = "\n".join(new)
    return TextEdit(Position(first, 0), end, text)


def action_edit(offer: Offer, doc: Document, answer: str) -> TextEdit:
    """The edit of an action in the document it was asked about (not for `tests`)."""
    indent = indentation(next((doc.line_text(i) for i in range(offer.first, offer.last + 1)
                               if doc.line_text(i).strip()), ""))  # fmt: skip
    if offer.action == "explain":
        text = "".join(line + "\n" for line in as_comment(answer, doc.language_id, indent))
        at = Position(offer.first, 0)
        return TextEdit(at, at, text)
    if offer.action == "chat":
        new = chat_answer_lines(answer, doc.language_id, indent)
        return replace_lines(doc, offer.first, offer.last, new)
    return replace_lines(doc, offer.first, offer.last, reindent(code_of(answer), indent))


def append_edit(doc: Document, code: str) -> TextEdit:
    """`code` added at the end of `doc`, after a blank line."""
    last = len(doc.lines) - 1
    tail = doc.line_text(last)
    at = Position(last, index_to_utf16(tail, len(tail)))
    return TextEdit(at, at, ("\n\n" if tail.strip() else "\n") + code + "\n")
