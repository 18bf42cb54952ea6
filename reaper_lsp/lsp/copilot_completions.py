"""Completions the Copilot way: copilot.lua's `getCompletions` / `getCompletionsCycling` and
panel (`getPanelCompletions` + `PanelSolution` / `PanelSolutionsDone`), copilot.vim's panel
(`textDocument/copilotPanelCompletion` with partial results) and its inline items; and what the
editors say about the suggestions afterwards (`notifyShown/Accepted/Rejected`,
`textDocument/didShowCompletion`, `didPartiallyAcceptCompletion`, the accept command), fed to
the usage tally through the session's `SuggestionFeedback`.

copilot.lua replaces the range from column 0 to the cursor with `text`, so `text` is the line
typed so far plus the suggestion; copilot.vim takes either shape and gets the suggestion alone,
anchored at the cursor. Positions are UTF-16 throughout.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from reaper_lsp.core.document import Document, Position, index_to_utf16, utf16_to_index
from reaper_lsp.core.types import Suggestion
from reaper_lsp.lsp.copilot_params import (
    DocParams,
    ItemParams,
    NotifyParams,
    RejectedParams,
    decode,
)
from reaper_lsp.lsp.server import ReaperServer

if TYPE_CHECKING:
    from reaper_lsp.services.session import Session

ACCEPT_COMMAND = "github.copilot.didAcceptCompletionItem"
CYCLING_SIZE = 3
PANEL_SIZE = 3
PANEL_SOLUTIONS_AFTER = 0.05
"""Seconds between a panel's answer and its solutions: copilot.vim 1.26 reads the answer in a
wait loop that would take the solutions too, before its panel exists to show them."""

JSON = dict[str, Any]


def _range(line: int, start: int, end: int) -> JSON:
    return {"start": {"line": line, "character": start}, "end": {"line": line, "character": end}}


def accept_command(key: str, title: str = "Accept suggestion") -> JSON:
    """The command an item carries: the editor runs it on a full accept, with our id."""
    return {"title": title, "command": ACCEPT_COMMAND, "arguments": [key]}


def _typed(doc: Document, position: Position) -> tuple[str, int]:
    """The cursor line's text before the cursor, and where that ends (UTF-16, clamped)."""
    line = doc.line_text(position.line)
    typed = line[: utf16_to_index(line, position.character)]
    return typed, index_to_utf16(typed, len(typed))


def _allowed(session: Session, uri: str) -> tuple[bool, bool]:
    """(remote, offline engine) may see the document at `uri`, by the privacy rules."""
    excluded = session.excluded(uri)
    return session.may_send(uri), not excluded or session.settings.privacy.excluded_local


async def _suggestions(
    ls: ReaperServer, p: DocParams, *, kind: str, limit: int
) -> tuple[Document | None, list[Suggestion]]:
    """The document and up to `limit` distinct suggestions at the cursor (more than one only
    when the user asked for the choice: cycling, the panels)."""
    session = ls.session
    uri, cursor = p.uri, p.cursor
    first = await session.completion.complete(uri, cursor, kind=kind, invoked=limit > 1)
    found = [first] if first is not None and first.text else []
    if limit > 1:
        from reaper_lsp.services.alternatives import alternatives  # not needed to start

        remote, local = _allowed(session, uri)
        found = await alternatives(
            session.completion, uri, cursor, first, limit=limit, remote=remote, local=local
        )
    return await session.workspace.document(uri), found


# -- copilot.lua ----------------------------------------------------------------------------


async def _completions(ls: ReaperServer, params: Any, method: str, limit: int) -> JSON:
    p = decode(params, DocParams, method)
    doc, found = await _suggestions(ls, p, kind="copilot", limit=limit)
    if doc is None:
        return {"completions": []}
    line = p.cursor.line
    typed, end = _typed(doc, p.cursor)
    completions = []
    for suggestion in found:
        text = typed + suggestion.text
        key = ls.session.feedback.issue(suggestion.provider, doc.language_id, text)
        completions.append({
            "uuid": key,
            "text": text,
            "displayText": suggestion.text,
            "range": _range(line, 0, end),
            "position": {"line": line, "character": end},
        })  # fmt: skip
    return {"completions": completions}


async def get_completions(ls: ReaperServer, params: Any) -> JSON:
    return await _completions(ls, params, "getCompletions", 1)


async def get_completions_cycling(ls: ReaperServer, params: Any) -> JSON:
    return await _completions(ls, params, "getCompletionsCycling", CYCLING_SIZE)


def notify_shown(ls: ReaperServer, params: Any) -> None:
    ls.session.feedback.shown(decode(params, NotifyParams, "notifyShown").uuid)


def notify_accepted(ls: ReaperServer, params: Any) -> None:
    p = decode(params, NotifyParams, "notifyAccepted")
    ls.session.feedback.accepted(p.uuid, p.acceptedLength)


def notify_rejected(ls: ReaperServer, params: Any) -> None:
    ls.session.feedback.rejected(decode(params, RejectedParams, "notifyRejected").uuids)


async def get_panel_completions(ls: ReaperServer, params: Any) -> JSON:
    """The answer says how many solutions to expect; they follow as `PanelSolution`
    notifications, then `PanelSolutionsDone` — after the answer, because copilot.vim (1.26)
    opens its panel only then and drops solutions for a panel it has not opened."""
    p = decode(params, DocParams, "getPanelCompletions")
    doc, found = await _suggestions(ls, p, kind="panel", limit=PANEL_SIZE)
    solutions = []
    if doc is not None:
        typed, end = _typed(doc, p.cursor)
        for rank, suggestion in enumerate(found):
            text = typed + suggestion.text
            if not text.strip():
                continue  # copilot.lua's panel fails on an all-blank solution
            key = ls.session.feedback.issue(suggestion.provider, doc.language_id, text)
            solutions.append({
                "panelId": p.panelId, "solutionId": key, "completionText": text,
                "displayText": text, "range": _range(p.cursor.line, 0, end),
                "score": round(1 / (rank + 1), 3),
            })  # fmt: skip

    def send() -> None:
        for solution in solutions:
            ls.protocol.notify("PanelSolution", solution)
        ls.protocol.notify("PanelSolutionsDone", {"panelId": p.panelId, "status": "OK"})

    def answered(task: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            asyncio.get_running_loop().call_later(PANEL_SOLUTIONS_AFTER, send)

    # pygls sends the answer from a done-callback of this task, added before ours.
    task = asyncio.current_task()
    if task is not None:
        task.add_done_callback(answered)
    return {"solutionCountTarget": len(solutions)}


# -- copilot.vim ----------------------------------------------------------------------------


def is_copilot_vim(ls: ReaperServer) -> bool:
    """copilot.vim reads inline items only with a range, and runs their command on accept."""
    info = ls.init_options.get("editorPluginInfo")
    return isinstance(info, dict) and info.get("name") == "copilot.vim"


def inline_item(
    ls: ReaperServer, doc: Document, position: Position, suggestion: Suggestion
) -> lsp.InlineCompletionItem:
    """An inline item as copilot.vim reads it: anchored at the cursor, with the command that
    reports the accept."""
    _, end = _typed(doc, position)
    key = ls.session.feedback.issue(suggestion.provider, doc.language_id, suggestion.text)
    at = lsp.Position(position.line, end)
    command = accept_command(key)
    return lsp.InlineCompletionItem(
        insert_text=suggestion.text,
        range=lsp.Range(at, at),
        command=lsp.Command(command["title"], ACCEPT_COMMAND, arguments=command["arguments"]),
    )


async def copilot_panel_completion(ls: ReaperServer, params: Any) -> JSON:
    """Items streamed as partial results when the client gave a token (then the answer is
    empty: copilot.vim appends it to what was streamed), with work-done progress around."""
    p = decode(params, DocParams, "textDocument/copilotPanelCompletion")
    work, partial = p.workDoneToken, p.partialResultToken
    progress = ls.protocol.notify
    if work is not None:
        begin = {"kind": "begin", "title": "reaper-lsp", "message": f"0/{PANEL_SIZE}"}
        progress(lsp.PROGRESS, lsp.ProgressParams(work, begin))
    doc, found = await _suggestions(ls, p, kind="panel", limit=PANEL_SIZE)
    items = []
    if doc is not None:
        typed, end = _typed(doc, p.cursor)
        for suggestion in found:
            text = typed + suggestion.text
            key = ls.session.feedback.issue(suggestion.provider, doc.language_id, text)
            items.append({"insertText": text, "range": _range(p.cursor.line, 0, end),
                          "command": accept_command(key)})  # fmt: skip
    streamed = partial is not None and bool(items)
    if streamed:
        progress(lsp.PROGRESS, lsp.ProgressParams(partial, {"items": items}))
    if work is not None:
        report = {"kind": "report", "message": f"{len(items)}/{len(items)}", "percentage": 100}
        progress(lsp.PROGRESS, lsp.ProgressParams(work, report))
        progress(lsp.PROGRESS, lsp.ProgressParams(work, {"kind": "end"}))
    return {"items": []} if streamed else {"items": items}


def did_show_completion(ls: ReaperServer, params: Any) -> None:
    key = decode(params, ItemParams, "textDocument/didShowCompletion").item.uuid
    if key is not None:
        ls.session.feedback.shown(key)


def did_partially_accept(ls: ReaperServer, params: Any) -> None:
    key = decode(params, ItemParams, "textDocument/didPartiallyAcceptCompletion").item.uuid
    if key is not None:
        ls.session.feedback.partial(key)


def accepted_item(ls: ReaperServer, *args: Any) -> None:
    """`github.copilot.didAcceptCompletionItem` with our id (copilot.vim, Neovim's exec_cmd)."""
    if args and isinstance(args[0], str):
        ls.session.feedback.accepted(args[0])


def register(server: ReaperServer) -> None:
    server.feature("getCompletions")(get_completions)
    server.feature("getCompletionsCycling")(get_completions_cycling)
    server.feature("notifyShown")(notify_shown)
    server.feature("notifyAccepted")(notify_accepted)
    server.feature("notifyRejected")(notify_rejected)
    server.feature("getPanelCompletions")(get_panel_completions)
    server.feature("textDocument/copilotPanelCompletion")(copilot_panel_completion)
    server.feature("textDocument/didShowCompletion")(did_show_completion)
    server.feature("textDocument/didPartiallyAcceptCompletion")(did_partially_accept)
    server.command(ACCEPT_COMMAND)(accepted_item)
