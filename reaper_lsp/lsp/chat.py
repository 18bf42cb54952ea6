"""The chat commands over LSP: `reaper.chat` (the answer streamed as `reaper/chatDelta`
notifications and, with a progress token, `$/progress` reports), `reaper.chatReset`,
`reaper.chatList`; and `relay`, which the code actions use too.

Each piece of an answer is sanitised once (an escape sequence split across pieces waits for its
end). `$/progress` carries the tail of the answer so far, at most every `REPORT_EVERY` seconds:
a 40 KB answer in 4,000 pieces costs a few dozen short reports, not 4,000 copies of the text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import attrs
from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from reaper_lsp.core.sanitize import StreamSanitizer
from reaper_lsp.lsp.server import ReaperServer
from reaper_lsp.services.errors import InvalidRequest

if TYPE_CHECKING:  # the services (and the providers they use) load after `initialize`
    from reaper_lsp.services.chat import ChatPiece

REPORT_EVERY = 0.1
"""Seconds between two `$/progress` reports of one answer."""
REPORT_TAIL = 200
"""Characters of the answer so far a `$/progress` report shows (its end)."""


@attrs.define
class TextDocumentArg:
    uri: str


@attrs.define
class MessageArg:
    role: str
    content: str


@attrs.define
class ChatArgs:
    """The argument of `reaper.chat` (JSON names)."""

    prompt: str | None = None
    messages: list[MessageArg] = attrs.field(factory=list)
    textDocument: TextDocumentArg | None = None  # the LSP's JSON names
    conversationId: str | None = None
    range: lsp.Range | None = None
    workDoneToken: int | str | None = None
    """For clients that cannot put a token on the request itself."""


@attrs.define
class ConversationArg:
    conversationId: str = "default"


async def relay(
    ls: LanguageServer,
    pieces: AsyncIterator[ChatPiece],
    *,
    conversation: str,
    token: lsp.ProgressToken | None,
    title: str,
) -> tuple[str, str]:
    """Stream an answer to the editor as `reaper/chatDelta` notifications and, with a `token`,
    as throttled `$/progress` reports of its tail; (provider, whole answer, sanitised). A
    `window/workDoneProgress/cancel` of the token cancels the answer."""
    provider, parts = "", []
    clean = StreamSanitizer()
    progress = ls.work_done_progress
    if token is not None:
        progress.begin(token, lsp.WorkDoneProgressBegin(title=title, cancellable=True))
        task = asyncio.current_task()

        def cancelled(future: Future[Any]) -> None:
            if future.cancelled() and task is not None:
                task.cancel()

        progress.tokens[token].add_done_callback(cancelled)
    ending, reported = "cancelled", 0.0
    try:
        async for piece in pieces:
            provider, text = piece.provider, clean.feed(piece.text)
            parts.append(text)
            if text:
                delta = {"conversationId": conversation, "delta": text}
                ls.protocol.notify("reaper/chatDelta", delta)
            if token is not None and time.monotonic() - reported >= REPORT_EVERY:
                reported = time.monotonic()
                progress.report(token, lsp.WorkDoneProgressReport(message=_tail(parts)))
        parts.append(clean.finish())
        ending = f"answered by {provider}" if provider else "no answer"
    except Exception:
        ending = "failed"
        raise
    finally:
        if token is not None:
            progress.tokens.pop(token, None)
            progress.end(token, lsp.WorkDoneProgressEnd(message=ending))
    return provider, "".join(parts)


def _tail(parts: list[str]) -> str:
    """The last `REPORT_TAIL` characters of the text so far, read from the end."""
    found, size = [], 0
    for part in reversed(parts):
        found.append(part)
        size += len(part)
        if size >= REPORT_TAIL:
            break
    return "".join(reversed(found))[-REPORT_TAIL:]


async def chat(ls: ReaperServer, args: ChatArgs) -> dict[str, object]:
    """`reaper.chat`: with `messages` the client keeps the history itself; with a `prompt`
    alone the conversation's history is kept here."""
    from reaper_lsp.services.chat import Lines

    if not args.prompt and not args.messages:
        raise InvalidRequest("reaper.chat needs a prompt or messages")
    running = ls.protocol.running_command()
    token = (running.token if running else None) or args.workDoneToken
    service = ls.session.chat
    conversation = args.conversationId or "default"
    uri = args.textDocument.uri if args.textDocument else None
    r = args.range
    lines = Lines.covering(r.start.line, r.end.line, r.end.character) if r else None
    if args.messages:
        history = [(m.role, m.content) for m in args.messages]
        sent = await service.messages(args.prompt, history, uri=uri, lines=lines)
        pieces = service.stream(sent, uri=uri or "")
    else:
        pieces = service.converse(conversation, args.prompt or "", uri=uri, lines=lines)
    provider, text = await relay(
        ls, pieces, conversation=conversation, token=token, title="reaper-lsp chat"
    )
    return {"conversationId": conversation, "provider": provider, "text": text}


def chat_reset(ls: ReaperServer, args: ConversationArg) -> dict[str, object]:
    reset = ls.session.chat.conversations.reset(args.conversationId)
    return {"conversationId": args.conversationId, "reset": reset}


def chat_list(ls: ReaperServer) -> dict[str, object]:
    return {"conversations": ls.session.chat.conversations.summaries()}


def register(server: ReaperServer) -> None:
    server.command("reaper.chat")(chat)
    server.command("reaper.chatReset")(chat_reset)
    server.command("reaper.chatList")(chat_list)
