"""Ghost text (`textDocument/inlineCompletion`) and the completion menu
(`textDocument/completion`): the position in, the session's suggestion out as LSP items."""

from __future__ import annotations

from lsprotocol import types as lsp

from reaper_lsp.core.document import Position
from reaper_lsp.lsp import copilot_completions, menu
from reaper_lsp.lsp.server import ReaperServer


async def inline_completion(
    ls: ReaperServer, params: lsp.InlineCompletionParams
) -> lsp.InlineCompletionList:
    service = ls.session.completion
    uri, position = params.text_document.uri, _position(params.position)
    if params.context.trigger_kind == lsp.InlineCompletionTriggerKind.Invoked:
        found = await service.alternatives(uri, position)  # the user asked: a few to cycle
    else:
        one = await service.complete(uri, position, kind="inline")
        found = [one] if one is not None else []
    if copilot_completions.is_copilot_vim(ls):
        doc = ls.session.workspace.documents.get(uri)
        if doc is not None:
            items = [copilot_completions.inline_item(ls, doc, position, s) for s in found]
            return lsp.InlineCompletionList(items=items)
    # No `range`: the text is inserted at the cursor. (With a range, Neovim 0.12 draws the item
    # as an overlay that hides the text after the cursor.)
    return lsp.InlineCompletionList(items=[lsp.InlineCompletionItem(s.text) for s in found])


async def completion(ls: ReaperServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    invoked = (
        params.context is not None
        and params.context.trigger_kind == lsp.CompletionTriggerKind.Invoked
    )
    session = ls.session
    uri = params.text_document.uri
    found = await session.completion.complete(
        uri, _position(params.position), kind="menu", invoked=invoked
    )
    doc = session.workspace.documents.get(uri)
    item = None
    if found is not None:
        item = menu.completion_item(
            doc.line_text(params.position.line) if doc is not None else "",
            params.position,
            found.text,
            found.provider,
            found.model,
            snippets=menu.snippet_support(ls.client_capabilities),
            rest_after_parenthesis=menu.cuts_at_parenthesis(ls.client_capabilities, ls.editor),
        )
    return lsp.CompletionList(is_incomplete=True, items=[item] if item else [])


def _position(position: lsp.Position) -> Position:
    return Position(position.line, position.character)


def register(server: ReaperServer) -> None:
    server.feature(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, lsp.InlineCompletionOptions())(
        inline_completion
    )
    server.feature(
        lsp.TEXT_DOCUMENT_COMPLETION,
        lsp.CompletionOptions(
            trigger_characters=list(menu.TRIGGER_CHARACTERS) or None, resolve_provider=False
        ),
    )(completion)
