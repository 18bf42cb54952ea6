"""The floor: the smallest pygls server that answers inline completion with a constant. Every
reaper-lsp figure is reported against this, measured in the same run."""

from __future__ import annotations

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

server = LanguageServer("floor", "1")


@server.feature(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, lsp.InlineCompletionOptions())
def inline(ls: LanguageServer, params: lsp.InlineCompletionParams) -> lsp.InlineCompletionList:
    return lsp.InlineCompletionList(items=[lsp.InlineCompletionItem(insert_text="constant")])


if __name__ == "__main__":
    server.start_io()
