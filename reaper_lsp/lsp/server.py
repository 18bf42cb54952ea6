"""pygls wiring: each handler translates LSP types to a call of the app's services and the
answer back, nothing more. Command arguments arrive typed (pygls structures them from the
handlers' annotations), results leave as JSON objects.

The app (and with it httpx and the providers) is imported and built only after the
`initialize` answer has gone out, so an editor's start-up never waits for it.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol.language_server import lsp_method

from reaper_lsp import __version__, config
from reaper_lsp.core.document import Change, Position
from reaper_lsp.logs import redact, register_secret
from reaper_lsp.lsp import menu
from reaper_lsp.lsp.code_actions import COMMAND as CODE_ACTION_COMMAND
from reaper_lsp.lsp.code_actions import KINDS as CODE_ACTION_KINDS
from reaper_lsp.lsp.code_actions import ActionRefused, CodeActionArgs, offer, perform
from reaper_lsp.lsp.commands import CancellableCommands, ChatArgs, ConversationArg
from reaper_lsp.lsp.rpc import GuardedProtocol
from reaper_lsp.workspace import uri_to_path

if TYPE_CHECKING:
    from reaper_lsp.services.app import App
    from reaper_lsp.services.status import Notice

log = logging.getLogger(__name__)

SIGN_IN_PROVIDERS = {"copilot": "copilot", "github": "copilot", "google": "google",
                     "claude": "google", "vertex": "google"}  # fmt: skip


class ReaperProtocol(CancellableCommands, GuardedProtocol):
    """Keeps documents in the app's line store instead of pygls's workspace, whose every edit
    re-splits the whole buffer, and pins positions to UTF-16 as our contract says."""

    _server: ReaperServer

    @lsp_method(lsp.INITIALIZE)
    def lsp_initialize(
        self, params: lsp.InitializeParams
    ) -> Generator[Any, Any, lsp.InitializeResult]:
        if params.capabilities.general is not None:
            params.capabilities.general.position_encodings = None
        result: lsp.InitializeResult = yield from super().lsp_initialize(params)
        return result

    @lsp_method(lsp.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: lsp.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        self._server.app.workspace.documents.open(doc.uri, doc.language_id, doc.version, doc.text)

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: lsp.DidChangeTextDocumentParams) -> None:
        app = self._server.app
        uri, version = params.text_document.uri, params.text_document.version
        app.completion.keystroke(uri)
        changes = [_change(c) for c in params.content_changes]
        if app.workspace.documents.change(uri, version, changes) is None:
            log.warning("change for %s, which was never opened; ignored", uri)

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: lsp.DidCloseTextDocumentParams) -> None:
        self._server.app.workspace.documents.close(params.text_document.uri)
        self._server.app.completion.closed(params.text_document.uri)


def _change(change: lsp.TextDocumentContentChangeEvent) -> Change:
    if isinstance(change, lsp.TextDocumentContentChangePartial):
        r = change.range
        return Change(
            change.text,
            Position(r.start.line, r.start.character),
            Position(r.end.line, r.end.character),
        )
    return Change(change.text)


class ReaperServer(LanguageServer):
    protocol: ReaperProtocol

    def __init__(self) -> None:
        super().__init__("reaper-lsp", __version__, protocol_cls=ReaperProtocol)
        self._app: App | None = None
        self.loaded = config.LoadedConfig()  # read for real at `initialize`
        self.workspace_roots: list[Path] = []
        self.editor = ""
        self.init_options: dict[str, Any] = {}
        self.client_settings: dict[str, Any] = {}

    @property
    def app(self) -> App:
        if self._app is None:
            from reaper_lsp.services.app import App

            app = App(self.loaded, workspace_roots=self.workspace_roots, editor=self.editor)
            for secret in app.secrets():
                register_secret(secret)
            app.events.listener = self.notice
            self._app = app
        return self._app

    def reload_config(self) -> config.LoadedConfig:
        loaded = config.load(
            init_options=self.init_options,
            client_settings=self.client_settings,
            workspace_root=self.workspace_roots[0] if self.workspace_roots else None,
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
        if self._app is not None:
            self._app.reconfigure(loaded)
            for secret in self._app.secrets():
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

    def open_in_browser(self, url: str) -> None:
        """Ask the editor to open `url` when it can (window/showDocument); never waits."""
        caps = self.client_capabilities.window
        if caps is None or caps.show_document is None or not caps.show_document.support:
            return
        params = lsp.ShowDocumentParams(uri=url, external=True, take_focus=True)
        self.protocol.send_request(lsp.WINDOW_SHOW_DOCUMENT, params)


class CommandFailed(JsonRpcException):
    """A command that could not do its job; the message is for the user (no secrets)."""

    CODE = -32803  # LSP RequestFailed
    MESSAGE = "Request failed"


# -- typed command arguments ------------------------------------------------------------------


@attrs.define
class ProviderArgs:
    """`{provider}` of the sign-in commands: copilot (alias github) or google (claude, vertex)."""

    provider: str = "copilot"

    @property
    def account(self) -> str:
        which = SIGN_IN_PROVIDERS.get(self.provider.lower())
        if which is None:
            raise JsonRpcInvalidParams(
                f"unknown provider {self.provider!r}; sign in to one of: copilot, google"
            )
        return which


# -- handlers -----------------------------------------------------------------------------------


def initialize(ls: ReaperServer, params: lsp.InitializeParams) -> None:
    # Start importing the app now, off the event loop; it is built after the answer.
    app_module = "reaper_lsp.services.app"
    threading.Thread(target=importlib.import_module, args=(app_module,), daemon=True).start()
    roots = [uri_to_path(f.uri) for f in params.workspace_folders or ()]
    if not roots and params.root_uri:
        roots = [uri_to_path(params.root_uri)]
    ls.workspace_roots = [r for r in roots if r is not None]
    options = params.initialization_options
    ls.init_options = dict(options) if isinstance(options, dict) else {}
    _register_secrets(ls.init_options)  # before anything can log or echo them
    client = params.client_info
    editor = f"{client.name}/{client.version or '0'}" if client is not None else ""
    ls.editor = editor.replace(" ", "-")
    ls.apply_config(ls.reload_config())


async def initialized(ls: ReaperServer, params: lsp.InitializedParams) -> None:
    await ls.app.start()


async def shutdown(ls: ReaperServer, params: None) -> None:
    if ls._app is not None:
        ls._app.save_status()
        await ls._app.aclose()


def did_change_configuration(ls: ReaperServer, params: lsp.DidChangeConfigurationParams) -> None:
    ls.client_settings = params.settings if isinstance(params.settings, dict) else {}
    _register_secrets(ls.client_settings)
    ls.apply_config(ls.reload_config())


async def inline_completion(
    ls: ReaperServer, params: lsp.InlineCompletionParams
) -> lsp.InlineCompletionList:
    invoked = params.context.trigger_kind == lsp.InlineCompletionTriggerKind.Invoked
    found = await ls.app.completion.complete(
        params.text_document.uri, _position(params.position), kind="inline", invoked=invoked
    )
    if found is None:
        return lsp.InlineCompletionList(items=[])
    # No `range`: the text is inserted at the cursor. (With a range, Neovim 0.12 draws the item
    # as an overlay that hides the text after the cursor.)
    return lsp.InlineCompletionList(items=[lsp.InlineCompletionItem(insert_text=found.text)])


async def completion(ls: ReaperServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    invoked = (
        params.context is not None
        and params.context.trigger_kind == lsp.CompletionTriggerKind.Invoked
    )
    uri = params.text_document.uri
    found = await ls.app.completion.complete(
        uri, _position(params.position), kind="menu", invoked=invoked
    )
    doc = ls.app.workspace.documents.get(uri)
    item = None
    if found is not None:
        item = menu.completion_item(
            doc.line_text(params.position.line) if doc is not None else "",
            params.position,
            found.text,
            found.provider,
            found.model,
            snippets=menu.snippet_support(ls.client_capabilities),
        )
    return lsp.CompletionList(is_incomplete=True, items=[item] if item else [])


def status(ls: ReaperServer) -> dict[str, object]:
    return ls.app.status().to_json()


def clear_cache(ls: ReaperServer) -> dict[str, object]:
    ls.app.cache.clear()
    return {"cleared": True}


async def sign_in(ls: ReaperServer, args: ProviderArgs) -> dict[str, object]:
    which = args.account
    try:
        if which == "copilot":
            code = await ls.app.github.start_sign_in()
            # Stock clients show no command result: say the code where every editor shows it.
            minutes = max(1, round(code.expires_in / 60))
            ls.show(
                lsp.MessageType.Info,
                f"To sign in to Copilot, open {code.verification_uri} and type {code.user_code} "
                f"(valid for {minutes} min)",
            )
            ls.open_in_browser(code.verification_uri)
            return {
                "provider": "copilot",
                "userCode": code.user_code,
                "verificationUri": code.verification_uri,
                "expiresIn": code.expires_in,
                "interval": code.interval,
            }
        url = await ls.app.google.start_sign_in()
        ls.show(lsp.MessageType.Info, f"Google sign-in: open {url} in a browser on this machine")
        ls.open_in_browser(url)
        return {"provider": "google", "authorizeUrl": url}
    except _sign_in_failures() as exc:
        raise CommandFailed(redact(f"sign-in to {which} could not start: {exc}")) from None


async def sign_in_confirm(ls: ReaperServer, args: ProviderArgs) -> dict[str, object]:
    which = args.account
    app = ls.app
    try:
        if which == "copilot":
            user = await app.github.confirm_sign_in()
            app.github.start()
        else:
            user = await app.google.confirm_sign_in()
    except _sign_in_failures() as exc:
        message = redact(f"sign-in to {which} failed: {exc}")
        app.events.signed(which, False, message=str(exc))
        raise CommandFailed(message) from None
    app.cache.clear()
    app.events.signed(which, True, user=user or "")
    return {"status": "OK", "provider": which, "user": user}


async def sign_out(ls: ReaperServer, args: ProviderArgs) -> dict[str, object]:
    which = args.account
    app = ls.app
    try:
        await (app.github if which == "copilot" else app.google).sign_out()
    except _sign_in_failures() as exc:
        raise CommandFailed(redact(f"sign-out from {which} failed: {exc}")) from None
    app.cache.clear()
    app.events.signed(which, False)
    return {"status": "OK", "provider": which}


async def chat(ls: ReaperServer, args: ChatArgs) -> dict[str, object]:
    from reaper_lsp.lsp.commands import answer
    from reaper_lsp.providers.errors import ProviderError

    if not args.prompt and not args.messages:
        raise JsonRpcInvalidParams("reaper.chat needs a prompt or messages")
    running = ls.protocol.running_command()
    try:
        return await answer(ls, ls.app.chat, args, running.token if running else None)
    except ProviderError as exc:
        raise CommandFailed(redact(str(exc))) from None


def chat_reset(ls: ReaperServer, args: ConversationArg) -> dict[str, object]:
    return {"conversationId": args.conversationId,
            "reset": ls.app.chat.conversations.reset(args.conversationId)}  # fmt: skip


def chat_list(ls: ReaperServer) -> dict[str, object]:
    return {"conversations": ls.app.chat.conversations.summaries()}


def code_action(ls: ReaperServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    doc = ls.app.workspace.documents.get(params.text_document.uri)
    if doc is None:
        return []
    marker = ls.app.settings.chat.marker
    return offer(doc, params.range, params.context.diagnostics, marker)


async def run_code_action(ls: ReaperServer, args: CodeActionArgs) -> dict[str, object]:
    from reaper_lsp.providers.errors import ProviderError

    running = ls.protocol.running_command()
    try:
        outcome = await perform(ls, ls.app, args, running.token if running else None)
    except ActionRefused as exc:
        ls.show(lsp.MessageType.Error, str(exc))
        raise CommandFailed(redact(str(exc))) from None
    except ProviderError as exc:
        raise CommandFailed(redact(str(exc))) from None
    if not outcome.applied and outcome.path:
        ls.show(lsp.MessageType.Info, f"tests for {outcome.path} are in the command's result "
                "(the editor cannot create files)")  # fmt: skip
    return outcome.to_json()


def _sign_in_failures() -> tuple[type[Exception], ...]:
    """What a sign-in may fail with that the user should hear about: credential problems and
    the network. Anything else is a bug, answered by GuardedProtocol without a traceback."""
    import httpx

    from reaper_lsp.auth.errors import AuthProblem
    from reaper_lsp.net.errors import NetError

    return (AuthProblem, NetError, httpx.HTTPError)


def _register_secrets(value: object, key: str = "") -> None:
    """Make every credential-looking value of a settings object redacted from now on."""
    if isinstance(value, dict):
        for name, inner in value.items():
            _register_secrets(inner, str(name))
    elif isinstance(value, str) and config.is_secret(key):
        register_secret(value)


def _position(position: lsp.Position) -> Position:
    return Position(position.line, position.character)


def create_server() -> ReaperServer:
    server = ReaperServer()
    server.feature(lsp.INITIALIZE)(initialize)
    server.feature(lsp.INITIALIZED)(initialized)
    server.feature(lsp.SHUTDOWN)(shutdown)
    server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    server.feature(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, lsp.InlineCompletionOptions())(
        inline_completion
    )
    server.feature(
        lsp.TEXT_DOCUMENT_COMPLETION,
        lsp.CompletionOptions(
            trigger_characters=list(menu.TRIGGER_CHARACTERS) or None, resolve_provider=False
        ),
    )(completion)
    server.command("reaper.status")(status)
    server.command("reaper.clearCache")(clear_cache)
    server.command("reaper.signIn")(sign_in)
    server.command("reaper.signInConfirm")(sign_in_confirm)
    server.command("reaper.signOut")(sign_out)
    server.command("reaper.chat")(chat)
    server.command("reaper.chatReset")(chat_reset)
    server.command("reaper.chatList")(chat_list)
    server.command(CODE_ACTION_COMMAND)(run_code_action)
    server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(code_action_kinds=list(CODE_ACTION_KINDS)),
    )(code_action)
    return server
