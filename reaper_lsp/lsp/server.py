"""The server of one editor connection: pygls's `LanguageServer` with the session it serves and
the host it gets the App from; and its protocol — pygls's, with the lifecycle guard (`rpc.py`),
cancellable commands (`cancellable.py`), documents kept in the session's line store instead of
pygls's workspace (whose every edit re-splits the whole buffer), positions pinned to UTF-16 as
our contract says, and an `exit` that ends this connection only (a daemon serves others).

In-process (`InProcess`), the App is imported and built only after the `initialize` answer has
gone out, so an editor's start-up never waits for it; in the daemon the host hands every
connection the one App it keeps warm.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.protocol import default_converter
from pygls.protocol.language_server import lsp_method

from reaper_lsp import __version__, config
from reaper_lsp.core.document import Change, Position
from reaper_lsp.logs import redact, register_secret
from reaper_lsp.lsp.cancellable import CancellableCommands
from reaper_lsp.lsp.rpc import GuardedProtocol

if TYPE_CHECKING:
    import cattrs

    from reaper_lsp.services.app import App
    from reaper_lsp.services.session import Session
    from reaper_lsp.services.status import Notice

log = logging.getLogger(__name__)


class Host(Protocol):
    """Where a connection's App comes from, and what ending a connection means for it."""

    @property
    def env(self) -> Mapping[str, str]: ...

    def app(self, loaded: config.LoadedConfig) -> App: ...

    def opened(self, editor: str, roots: list[Path]) -> None:
        """`initialize` said which editor this is and which folders it opened."""
        ...

    async def release(self) -> None:
        """The connection ended (its session, if any, is closed already)."""
        ...


class InProcess:
    """One connection, one App: built on first use, closed with the connection."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self._app: App | None = None

    def app(self, loaded: config.LoadedConfig) -> App:
        if self._app is None:
            from reaper_lsp.services.app import App

            self._app = App(loaded, env=self.env)
        return self._app

    def opened(self, editor: str, roots: list[Path]) -> None:
        """Nothing to tell: this process serves this editor alone."""

    async def release(self) -> None:
        if self._app is not None:
            await self._app.aclose()


class ReaperProtocol(CancellableCommands, GuardedProtocol):
    _server: ReaperServer

    @lsp_method(lsp.INITIALIZE)
    def lsp_initialize(
        self, params: lsp.InitializeParams
    ) -> Generator[Any, Any, lsp.InitializeResult]:
        if params.capabilities.general is not None:
            params.capabilities.general.position_encodings = None
        result: lsp.InitializeResult = yield from super().lsp_initialize(params)
        return result

    @lsp_method(lsp.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """pygls's shutdown, over a copy of the requests in flight: cancelling a command's
        future runs its done callback at once, which removes it from the dict pygls is
        walking (a chat in flight made `shutdown` fail)."""
        handler = self.fm.features.get(lsp.SHUTDOWN)
        if handler is not None:
            yield handler, args, None
        current = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current and not future.done():
                future.cancel()
        self._shutdown = True

    @lsp_method(lsp.EXIT)
    def lsp_exit(self, *args: Any) -> Generator[Any, Any, None]:
        """Stop serving this connection; whoever serves it closes the session and exits (the
        in-process server) or hangs up (the daemon)."""
        self._server.stop(0 if self._shutdown else 1)
        yield from ()

    @lsp_method(lsp.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: lsp.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        documents = self._server.session.workspace.documents
        documents.open(doc.uri, doc.language_id, doc.version, doc.text)

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: lsp.DidChangeTextDocumentParams) -> None:
        session = self._server.session
        uri, version = params.text_document.uri, params.text_document.version
        session.completion.keystroke(uri)
        changes = [_change(c) for c in params.content_changes]
        if session.change_document(uri, version, changes) is None:
            log.warning("change for %s, which was never opened; ignored", uri)

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: lsp.DidCloseTextDocumentParams) -> None:
        session = self._server.session
        session.workspace.documents.close(params.text_document.uri)
        session.completion.closed(params.text_document.uri)
        session.nes.forget(params.text_document.uri)


def _change(change: lsp.TextDocumentContentChangeEvent) -> Change:
    if isinstance(change, lsp.TextDocumentContentChangePartial):
        r = change.range
        return Change(
            change.text,
            Position(r.start.line, r.start.character),
            Position(r.end.line, r.end.character),
        )
    return Change(change.text)


@functools.cache
def shared_converter() -> cattrs.Converter:
    """One cattrs converter for every connection of the process. Building one, and the
    (un)structuring code it then generates for each message type on first use, cost the
    daemon 20-30 ms of every editor's `initialize`; it keeps no per-connection state."""
    converter: cattrs.Converter = default_converter()  # type: ignore[no-untyped-call]
    return converter


_FIRST_MESSAGES: tuple[tuple[type, dict[str, Any]], ...] = (
    (lsp.InitializeParams, {"capabilities": {}, "processId": None}),
    (lsp.DidOpenTextDocumentParams,
     {"textDocument": {"uri": "file:///a", "languageId": "python", "version": 1, "text": ""}}),
    (lsp.DidChangeTextDocumentParams,
     {"textDocument": {"uri": "file:///a", "version": 2}, "contentChanges": [{"text": ""}]}),
    (lsp.InlineCompletionParams,
     {"textDocument": {"uri": "file:///a"}, "position": {"line": 0, "character": 0},
      "context": {"triggerKind": 1}}),
    (lsp.CompletionParams,
     {"textDocument": {"uri": "file:///a"}, "position": {"line": 0, "character": 0}}),
)  # fmt: skip
_FIRST_ANSWERS = (
    lsp.InitializeResult(lsp.ServerCapabilities(), lsp.ServerInfo("reaper-lsp")),
    lsp.InlineCompletionList([lsp.InlineCompletionItem("x")]),
    lsp.CompletionList(True, [lsp.CompletionItem("x")]),
)


def warm_converter() -> None:
    """Have the shared converter generate now, off any editor's path (a daemon calls this
    in a thread at start), the code for the messages every editor sends and receives first:
    generated on first use, it took ~10 ms of a daemon's first `initialize` and as much of
    its first completion."""
    converter = shared_converter()
    for kind, sample in _FIRST_MESSAGES:
        converter.structure(sample, kind)
    for answer in _FIRST_ANSWERS:
        converter.unstructure(answer)


class ReaperServer(LanguageServer):
    protocol: ReaperProtocol

    def __init__(self, host: Host) -> None:
        super().__init__(
            "reaper-lsp",
            __version__,
            protocol_cls=ReaperProtocol,
            converter_factory=shared_converter,
        )
        self.host = host
        self._session: Session | None = None
        self.loaded = config.LoadedConfig()  # read for real at `initialize`
        self.roots: list[Path] = []
        self.editor = ""
        self.init_options: dict[str, Any] = {}
        self.client_settings: dict[str, Any] = {}
        self.stopping = asyncio.Event()
        """Set by `exit`: the connection is served no more."""
        self.exit_code = 1
        self.status_watchers: list[Callable[[], None]] = []
        """Told when the session starts and after every status notice (the Copilot methods'
        status notifications are sent from there)."""

    @property
    def session(self) -> Session:
        """This connection's session, built on first use after `initialize`."""
        if self._session is None:
            from reaper_lsp.services.session import Session

            app = self.host.app(self.loaded)
            session = Session(app, roots=self.roots, editor=self.editor)
            session.apply(self.loaded)
            for secret in app.secrets():
                register_secret(secret)
            session.listen(self.notice)
            self._session = session
            self._status_changed()
        return self._session

    def reload_config(self) -> config.LoadedConfig:
        loaded = config.load(
            env=self.host.env,
            init_options=self.init_options,
            client_settings=self.client_settings,
            workspace_root=self.roots[0] if self.roots else None,
        )
        for problem in loaded.errors:
            log.error("config: %s", problem)
        for warning in loaded.warnings:
            log.warning("config: %s", warning)
        if loaded.errors:
            self.show(
                lsp.MessageType.Error, "reaper-lsp configuration: " + "; ".join(loaded.errors)
            )
        return loaded

    def apply_config(self, loaded: config.LoadedConfig) -> None:
        self.loaded = loaded
        if self._session is not None:
            self._session.apply(loaded)
            for secret in self._session.app.secrets():
                register_secret(secret)

    def show(self, kind: lsp.MessageType, text: str) -> None:
        self.window_show_message(lsp.ShowMessageParams(kind, redact(text)))

    def notice(self, notice: Notice) -> None:
        """Pass a status notice on to the editor."""
        from reaper_lsp.services.status import StatusChange

        if isinstance(notice, StatusChange):
            self.protocol.notify("reaper/status", notice.to_json())
        else:
            self.show(
                lsp.MessageType.Error if notice.error else lsp.MessageType.Warning, notice.text
            )
        self._status_changed()

    def _status_changed(self) -> None:
        for watcher in self.status_watchers:
            try:
                watcher()
            except Exception:  # a status line gone wrong must not take the session down
                log.warning("a status watcher failed", exc_info=True)

    def open_in_browser(self, url: str) -> None:
        """Ask the editor to open `url` when it can (window/showDocument); never waits."""
        caps = self.client_capabilities.window
        if caps is None or caps.show_document is None or not caps.show_document.support:
            return
        params = lsp.ShowDocumentParams(uri=url, external=True, take_focus=True)
        self.protocol.send_request(lsp.WINDOW_SHOW_DOCUMENT, params)

    def stop(self, code: int) -> None:
        """`exit`: serve this connection no more; `code` is what LSP says to exit with."""
        self.exit_code = code
        self.stopping.set()

    async def close(self) -> None:
        """The connection ended: close its session, then tell the host."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        await self.host.release()
