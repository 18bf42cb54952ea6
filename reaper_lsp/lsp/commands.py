"""Long-running commands over LSP: cancelling them when the client asks (`$/cancelRequest`,
or `window/workDoneProgress/cancel` of their token), and relaying a streamed chat answer as
`reaper/chatDelta` notifications and `$/progress` reports.

pygls answers a cancelled `workspace/executeCommand` with -32800 but lets the command run on;
`CancellableCommands` remembers each command request and cancels the task serving it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import attrs
from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import MsgId
from pygls.protocol.language_server import lsp_method

from reaper_lsp.core.sanitize import sanitize_terminal

if TYPE_CHECKING:
    from reaper_lsp.services.chat import ChatPiece, ChatService


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


@dataclass(slots=True)
class RunningCommand:
    """A `workspace/executeCommand` request being served: its progress token, and the task
    that a `$/cancelRequest` for it cancels."""

    token: lsp.ProgressToken | None
    task: asyncio.Task[Any] | None = None


class CancellableCommands(LanguageServerProtocol):
    """A protocol mixin: commands that call `running_command()` stop when cancelled."""

    def __init__(self, server: Any, converter: Any) -> None:
        super().__init__(server, converter)
        self._commands: dict[MsgId, RunningCommand] = {}

    @lsp_method(lsp.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(
        self, params: lsp.ExecuteCommandParams
    ) -> Generator[Any, Any, Any]:
        # pygls passes a command its arguments only: keep what else the request said. The
        # request's id is in the context here (and in the command's task, created from it).
        if self.msg_id is not None:
            self._commands[self.msg_id] = RunningCommand(params.work_done_token)
        result = yield from super().lsp_workspace__execute_command(params)
        return result

    def running_command(self) -> RunningCommand | None:
        """The command request the current task serves, from now on cancellable. Called from
        a command handler only: a request missing here was cancelled before its handler ran,
        so the handler's task is cancelled now."""
        if self.msg_id is None:
            return None
        command = self._commands.get(self.msg_id)
        task = asyncio.current_task()
        if command is None and task is not None:
            task.cancel()
        elif command is not None:
            command.task = task
        return command

    def _handle_cancel_notification(self, msg_id: MsgId) -> None:
        command = self._commands.pop(msg_id, None)
        super()._handle_cancel_notification(msg_id)
        if command is not None and command.task is not None:
            command.task.cancel()

    def _send_response(
        self, msg_id: MsgId, result: Any | None = None, error: lsp.ResponseError | None = None
    ) -> None:
        self._commands.pop(msg_id, None)
        super()._send_response(msg_id, result, error)


async def relay(
    ls: LanguageServer,
    pieces: AsyncIterator[ChatPiece],
    *,
    conversation: str,
    token: lsp.ProgressToken | None,
    title: str,
) -> tuple[str, str]:
    """Stream an answer to the editor as `reaper/chatDelta` notifications and, with a
    `token`, as `$/progress` reports of the text so far; (provider, whole answer). A
    `window/workDoneProgress/cancel` of the token cancels the answer."""
    provider, parts = "", []
    progress = ls.work_done_progress
    if token is not None:
        progress.begin(token, lsp.WorkDoneProgressBegin(title=title, cancellable=True))
        task = asyncio.current_task()

        def cancelled(future: Future[Any]) -> None:
            if future.cancelled() and task is not None:
                task.cancel()

        progress.tokens[token].add_done_callback(cancelled)
    ending = "cancelled"
    try:
        async for piece in pieces:
            provider, text = piece.provider, sanitize_terminal(piece.text)
            parts.append(piece.text)
            ls.protocol.notify("reaper/chatDelta", {"conversationId": conversation, "delta": text})
            if token is not None:
                so_far = sanitize_terminal("".join(parts))
                progress.report(token, lsp.WorkDoneProgressReport(message=so_far))
        ending = f"answered by {provider}" if provider else "no answer"
    except Exception:
        ending = "failed"
        raise
    finally:
        if token is not None:
            progress.tokens.pop(token, None)
            progress.end(token, lsp.WorkDoneProgressEnd(message=ending))
    # Sanitised whole: an escape sequence split across pieces leaves no payload behind.
    return provider, sanitize_terminal("".join(parts))


async def answer(
    ls: LanguageServer, service: ChatService, args: ChatArgs, token: lsp.ProgressToken | None
) -> dict[str, object]:
    """`reaper.chat`: with `messages` the client keeps the history itself; with a `prompt`
    alone the conversation's history is kept here. ValueError without either."""
    from reaper_lsp.services.chat import Lines

    conversation = args.conversationId or "default"
    uri = args.textDocument.uri if args.textDocument else None
    r = args.range
    lines = Lines.covering(r.start.line, r.end.line, r.end.character) if r else None
    if args.messages:
        history = [(m.role, m.content) for m in args.messages]
        pieces = service.stream(await service.messages(args.prompt, history, uri=uri, lines=lines))
    elif args.prompt:
        pieces = service.converse(conversation, args.prompt, uri=uri, lines=lines)
    else:
        raise ValueError("reaper.chat needs a prompt or messages")
    provider, text = await relay(
        ls, pieces, conversation=conversation, token=token or args.workDoneToken,
        title="reaper-lsp chat",
    )  # fmt: skip
    return {"conversationId": conversation, "provider": provider, "text": text}
