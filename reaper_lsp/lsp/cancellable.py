"""Long-running commands over LSP: cancelling them when the client asks (`$/cancelRequest`).

pygls answers a cancelled `workspace/executeCommand` with -32800 but lets the command run on;
`CancellableCommands` remembers each command request and cancels the task serving it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from lsprotocol import types as lsp
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import MsgId
from pygls.protocol.language_server import lsp_method


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
