"""Next-edit suggestions the Copilot way (copilot-lsp, copilot.lua's nes, sidekick.nvim):
`textDocument/copilotInlineEdit` → `{edits: [{text, textDocument, range, command}]}`, and
`textDocument/didShowInlineEdit`. The answer is always an object with a list — copilot-lsp
fails on anything else — and echoes the version the editor sent, which sidekick compares
with the buffer's own."""

from __future__ import annotations

from typing import Any

from reaper_lsp.lsp.copilot_completions import accept_command
from reaper_lsp.lsp.copilot_params import DocParams, ItemParams, decode
from reaper_lsp.lsp.server import ReaperServer


async def inline_edit(ls: ReaperServer, params: Any) -> dict[str, Any]:
    p = decode(params, DocParams, "textDocument/copilotInlineEdit")
    session = ls.session
    uri = p.uri
    found = await session.nes.suggest(uri, p.cursor, p.version)
    version = p.version if p.version is not None else found.proposal.version
    edits = []
    for edit in found.proposal.edits:
        key = session.feedback.issue(found.provider, found.language, edit.text)
        edits.append({
            "text": edit.text,
            "textDocument": {"uri": uri, "version": version},
            "range": {
                "start": {"line": edit.start_line, "character": edit.start_character},
                "end": {"line": edit.end_line, "character": edit.end_character},
            },
            "command": accept_command(key, "Accept next edit"),
        })  # fmt: skip
    return {"edits": edits}


def did_show_inline_edit(ls: ReaperServer, params: Any) -> None:
    key = decode(params, ItemParams, "textDocument/didShowInlineEdit").item.uuid
    if key is not None:
        ls.session.feedback.shown(key)


def register(server: ReaperServer) -> None:
    server.feature("textDocument/copilotInlineEdit")(inline_edit)
    server.feature("textDocument/didShowInlineEdit")(did_show_inline_edit)
