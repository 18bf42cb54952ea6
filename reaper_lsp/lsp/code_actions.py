"""Chat that edits code: the code actions offered on a selection or the current function
(Explain, Fix, Add docstring, Write tests, in-buffer chat), their prompts, the edits made from an
answer, and relaying a streamed answer to the editor (`reaper/chatDelta`, `$/progress`).

Everything but `relay` and `perform` is pure: text in, prompts and LSP edits out.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from reaper_lsp.core.document import Document, index_to_utf16, strip_terminator
from reaper_lsp.core.prompts import comment_line

if TYPE_CHECKING:
    from reaper_lsp.services.app import App

COMMAND = "reaper.codeAction"
SYSTEM = (
    "You are a programming assistant inside a text editor. Your answer is inserted into the "
    "user's file as it is, so follow the requested format exactly and be brief."
)
_TITLES = {
    "explain": "Reaper: Explain",
    "fix": "Reaper: Fix",
    "docstring": "Reaper: Add docstring",
    "tests": "Reaper: Write tests",
    "chat": "Reaper: Answer",
}
_KINDS = {
    "explain": lsp.CodeActionKind.RefactorRewrite,
    "fix": lsp.CodeActionKind.QuickFix,
    "docstring": lsp.CodeActionKind.RefactorRewrite,
    "tests": lsp.CodeActionKind.Source,
    "chat": lsp.CodeActionKind.RefactorRewrite,
}
_DEFINITION = re.compile(
    r"\s*(?:export\s+|pub(?:\(\w+\))?\s+|public\s+|private\s+|static\s+|async\s+)*"
    r"(?:def|class|function|fn|func|fun|sub|impl|interface|struct|enum|local\s+function)\b"
)
_COMMENT_OPENERS = ("<!--", "//", "--", "/*", "#", ";", "%", '"', "*")
KINDS = tuple(dict.fromkeys(_KINDS.values()))
"""The code action kinds offered, for the server's capability."""
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
WRAP = 88


class ActionRefused(Exception):
    """The action cannot be done (the document changed, is not open…); the message says why."""


@attrs.define
class CodeActionArgs:
    """The argument of `reaper.codeAction`, as `offer` puts it in each action's command."""

    action: str
    uri: str
    version: int
    first: int
    last: int
    question: str = ""
    diagnostics: list[str] = attrs.field(factory=list)


# -- what to offer ---------------------------------------------------------------------------


def selected_lines(doc: Document, selection: lsp.Range) -> tuple[int, int]:
    """The whole lines a selection covers; a cursor is the enclosing definition (so is a
    one-character selection: Helix's cursor is one)."""
    start, end = selection.start.line, selection.end.line
    if start == end and selection.end.character - selection.start.character <= 1:
        return block_around(doc.lines, start)
    if end > start and selection.end.character == 0:
        end -= 1  # a line-wise selection ends at the start of the next line
    last = len(doc.lines) - 1
    return min(start, last), min(end, last)


def block_around(lines: Sequence[str], line: int) -> tuple[int, int]:
    """The function or class around `line` (indentation decides where it ends), or the line
    itself when there is none."""
    line = min(max(0, line), len(lines) - 1)
    start = next((i for i in range(line, -1, -1) if _DEFINITION.match(lines[i])), None)
    if start is None:
        return line, line
    indent = _indent(lines[start])
    end = start
    for i in range(start + 1, len(lines)):
        text = strip_terminator(lines[i])
        if not text.strip():
            continue
        if len(_indent(text)) <= len(indent):
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


def offer(
    doc: Document, selection: lsp.Range, diagnostics: Sequence[lsp.Diagnostic], marker: str
) -> list[lsp.CodeAction]:
    """The actions for a selection (or the cursor) in `doc`."""
    first, last = selected_lines(doc, selection)
    wanted = ["explain", "docstring", "tests"]
    if diagnostics:
        wanted.insert(0, "fix")
    base = CodeActionArgs("", doc.uri, doc.version, first, last)
    actions = [_action(attrs.evolve(base, action=name), diagnostics) for name in wanted]
    lo, hi = sorted((selection.start.line, selection.end.line))
    for i in range(lo, min(hi, len(doc.lines) - 1) + 1):
        question = marker_question(doc.line_text(i), marker)
        if question is not None:
            args = attrs.evolve(base, action="chat", first=i, last=i, question=question)
            actions.insert(0, _action(args, ()))
            break
    return actions


def _action(args: CodeActionArgs, diagnostics: Sequence[lsp.Diagnostic]) -> lsp.CodeAction:
    args.diagnostics = [f"line {d.range.start.line + 1}: {d.message}" for d in diagnostics]
    title = _TITLES[args.action]
    if args.action == "chat":
        title = f"{title}: {args.question[:50]}"
    command = lsp.Command(title, COMMAND, arguments=[attrs.asdict(args)])
    return lsp.CodeAction(
        title,
        kind=_KINDS[args.action],
        diagnostics=list(diagnostics) if args.action == "fix" else None,
        command=command,
    )


# -- prompts ---------------------------------------------------------------------------------


def action_prompt(args: CodeActionArgs, doc: Document, name: str, tests_path: str = "") -> str:
    """The user message for one action: the instruction, the selected lines, the file."""
    code = "".join(doc.lines[args.first : args.last + 1]).rstrip("\n")
    language = doc.language_id
    where = f"lines {args.first + 1}-{args.last + 1} of {name} ({language})"
    if args.action == "explain":
        ask = (
            "Explain what the selected code does and anything surprising about it, in a few "
            "sentences of plain prose: no code blocks, no headings, no lists. The answer becomes "
            "a comment above the code."
        )
    elif args.action == "fix":
        problems = "\n".join(args.diagnostics) or "(none reported: find the bug)"
        ask = (
            f"Fix the selected code. Problems reported:\n{problems}\nReply with the corrected "
            "code for exactly the selected lines, in one fenced code block, nothing else."
        )
    elif args.action == "docstring":
        ask = (
            "Add a docstring (or this language's documentation comment) to the selected code. "
            "Reply with the selected lines with the documentation added and nothing else "
            "changed, in one fenced code block, nothing else."
        )
    elif args.action == "tests":
        ask = (
            f"Write unit tests for the selected code, to go into {tests_path}. Reply with the "
            "test code only (imports included), in one fenced code block, nothing else."
        )
    else:
        ask = (
            f"In a comment on line {args.first + 1} the user asks: {args.question}\nAnswer "
            "briefly. Prose becomes comment lines; code in a fenced code block is inserted as "
            "code in place of the question."
        )
    file_text = doc.text[:20_000]
    return f"{ask}\n\nSelected ({where}):\n```\n{code}\n```\n\nFile {name}:\n```\n{file_text}\n```"


def tests_path(path: Path, roots: Sequence[Path]) -> Path:
    """Where tests for `path` go: an existing test file if there is one, else the usual name
    for the language (Python's in the project's `tests/` folder when it has one)."""
    stem, suffix = path.stem, path.suffix
    if suffix == ".py":
        root = next((r for r in roots if r in path.parents), path.parent)
        candidates = [root / "tests" / f"test_{stem}.py", path.parent / f"test_{stem}.py"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is not None:
            return found
        return candidates[0] if (root / "tests").is_dir() else candidates[1]
    if suffix in (".js", ".ts", ".jsx", ".tsx", ".mjs"):
        return path.with_name(f"{stem}.test{suffix}")
    return path.with_name(f"{stem}_test{suffix}")


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


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def replace_lines(doc: Document, first: int, last: int, new: Sequence[str]) -> lsp.TextEdit:
    """Lines `first`..`last` replaced by `new` (terminators kept as the document has them)."""
    if last + 1 < len(doc.lines):
        end = lsp.Position(last + 1, 0)
        text = "".join(line + "\n" for line in new)
    else:  # the document's last line has no line after it to end on
        tail = doc.line_text(last)
        end = lsp.Position(last, index_to_utf16(tail, len(tail)))
        text = "\n".join(new)
    return lsp.TextEdit(lsp.Range(lsp.Position(first, 0), end), text)


def action_edit(args: CodeActionArgs, doc: Document, answer: str) -> lsp.TextEdit:
    """The edit of an action in the document it was asked about (not for `tests`)."""
    indent = _indent(next((doc.line_text(i) for i in range(args.first, args.last + 1)
                           if doc.line_text(i).strip()), ""))  # fmt: skip
    if args.action == "explain":
        lines = as_comment(answer, doc.language_id, indent)
        text = "".join(line + "\n" for line in lines)
        at = lsp.Position(args.first, 0)
        return lsp.TextEdit(lsp.Range(at, at), text)
    if args.action == "chat":
        new = chat_answer_lines(answer, doc.language_id, indent)
        return replace_lines(doc, args.first, args.last, new)
    return replace_lines(doc, args.first, args.last, reindent(code_of(answer), indent))


def document_edit(
    uri: str, version: int | None, edits: list[lsp.TextEdit], versioned: bool
) -> lsp.WorkspaceEdit:
    """`edits` of one document, tied to its version when the client takes documentChanges."""
    if not versioned:
        return lsp.WorkspaceEdit(changes={uri: edits})
    target = lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
    return lsp.WorkspaceEdit(document_changes=[lsp.TextDocumentEdit(target, list(edits))])


def client_edits(ls: LanguageServer) -> tuple[bool, bool]:
    """(documentChanges, resource creation) support of the client."""
    workspace = ls.client_capabilities.workspace
    edit = workspace.workspace_edit if workspace is not None else None
    if edit is None:
        return False, False
    creates = lsp.ResourceOperationKind.Create in (edit.resource_operations or ())
    return bool(edit.document_changes), bool(edit.document_changes) and creates


# -- talking to the editor -------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    applied: bool
    provider: str
    text: str
    path: str = ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"applied": self.applied, "provider": self.provider}
        out["text"] = self.text
        if self.path:
            out["path"] = self.path
        return out


async def perform(
    ls: LanguageServer, app: App, args: CodeActionArgs, token: lsp.ProgressToken | None
) -> Outcome:
    """Ask for the action's answer and apply its edit; `ActionRefused` when the document is
    not at the version the action was offered for (before asking, and again before editing)."""
    from reaper_lsp.providers.base import ChatMessage
    from reaper_lsp.workspace import uri_to_path

    if args.action not in _TITLES:
        raise ActionRefused(f"unknown code action {args.action!r}")
    doc = _current(app, args)
    name = app.workspace.relative_path(doc.uri)
    path = uri_to_path(doc.uri)
    target = tests_path(path, app.workspace.roots) if path and args.action == "tests" else None
    prompt = action_prompt(args, doc, name, str(target or ""))
    messages = [ChatMessage("system", SYSTEM), ChatMessage("user", prompt)]
    title = _TITLES[args.action]
    from reaper_lsp.lsp.commands import relay

    provider, answer = await relay(
        ls, app.chat.stream(messages), conversation=f"{COMMAND}:{args.action}", token=token,
        title=title,
    )  # fmt: skip
    doc = _current(app, args)
    versioned, creates = client_edits(ls)
    if target is not None:
        edit = await _tests_edit(app, target, code_of(answer), versioned, creates)
        if edit is None:
            return Outcome(False, provider, answer, str(target))
    else:
        edit = document_edit(doc.uri, doc.version, [action_edit(args, doc, answer)], versioned)
    result = await ls.workspace_apply_edit_async(
        lsp.ApplyWorkspaceEditParams(edit=edit, label=title)
    )
    return Outcome(bool(result.applied), provider, answer, str(target or ""))


def _current(app: App, args: CodeActionArgs) -> Document:
    doc = app.workspace.documents.get(args.uri)
    if doc is None:
        raise ActionRefused(f"{_TITLES[args.action]}: the document is no longer open")
    if doc.version != args.version:
        raise ActionRefused(
            f"{_TITLES[args.action]}: the document changed since the action was offered "
            f"(version {args.version}, now {doc.version}); nothing was edited, try again"
        )
    return doc


async def _tests_edit(
    app: App, target: Path, code: str, versioned: bool, creates: bool
) -> lsp.WorkspaceEdit | None:
    """New tests appended to an existing test file, or a new file where the client can
    create one; None when neither is possible."""
    uri = target.as_uri()
    existing = await app.workspace.document(uri)
    if existing is not None:
        last = len(existing.lines) - 1
        tail = existing.line_text(last)
        at = lsp.Position(last, index_to_utf16(tail, len(tail)))
        text = ("\n\n" if tail.strip() else "\n") + code + "\n"
        version = existing.version if app.workspace.documents.get(uri) is not None else None
        edit = lsp.TextEdit(lsp.Range(at, at), text)
        return document_edit(uri, version, [edit], versioned)
    if not creates:
        return None
    insert = lsp.TextEdit(lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)), code + "\n")
    target_id = lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None)
    return lsp.WorkspaceEdit(
        document_changes=[
            lsp.CreateFile(uri=uri, options=lsp.CreateFileOptions(ignore_if_exists=True)),
            lsp.TextDocumentEdit(target_id, [insert]),
        ]
    )
