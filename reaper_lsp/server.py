"""pygls wiring: each handler translates LSP types to engine calls and back, nothing more."""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from reaper_lsp import __version__, config
from reaper_lsp.core.debounce import TypingRhythm
from reaper_lsp.core.document import Change, Position, index_to_utf16, utf16_to_index
from reaper_lsp.core.types import Suggestion
from reaper_lsp.logs import register_secret
from reaper_lsp.providers.base import ChatMessage, ProviderError

if TYPE_CHECKING:
    from reaper_lsp.engine import Engine

log = logging.getLogger(__name__)

SIGN_IN_PROVIDERS = {"copilot": "copilot", "github": "copilot", "google": "google",
                     "claude": "google", "vertex": "google"}  # fmt: skip
_WORD_TAIL = re.compile(r"[A-Za-z0-9_$]*$")


class ReaperProtocol(LanguageServerProtocol):
    """Keeps documents in the engine's line store instead of pygls's workspace, whose every
    edit re-splits the whole buffer, and pins positions to UTF-16 as our contract says."""

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
        self._server.engine.documents.open(doc.uri, doc.language_id, doc.version, doc.text)

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: lsp.DidChangeTextDocumentParams) -> None:
        changes = [_change(c) for c in params.content_changes]
        uri, version = params.text_document.uri, params.text_document.version
        self._server.rhythm.keystroke(uri, time.monotonic())
        if self._server.engine.documents.change(uri, version, changes) is None:
            log.warning("change for %s, which was never opened; ignored", uri)

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: lsp.DidCloseTextDocumentParams) -> None:
        self._server.engine.documents.close(params.text_document.uri)
        self._server.rhythm.forget(params.text_document.uri)


def _change(change: lsp.TextDocumentContentChangeEvent) -> Change:
    if isinstance(change, lsp.TextDocumentContentChangePartial):
        r = change.range
        return Change(
            change.text,
            Position(r.start.line, r.start.character),
            Position(r.end.line, r.end.character),
        )
    return Change(change.text)


def _uri_to_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


class ReaperServer(LanguageServer):
    """The engine (and with it httpx and the providers) is imported and built only after the
    `initialize` answer has gone out, so an editor's start-up never waits for it."""

    def __init__(self) -> None:
        super().__init__("reaper-lsp", __version__, protocol_cls=ReaperProtocol)
        self._engine: Engine | None = None
        self.loaded = config.LoadedConfig()  # read for real at `initialize`
        self.workspace_roots: list[Path] = []
        self.editor = ""
        self.init_options: dict[str, Any] = {}
        self.client_settings: dict[str, Any] = {}
        self.inflight: dict[tuple[str, str], asyncio.Task[Suggestion | None]] = {}
        self.sent_states: dict[str, str] = {}
        self.rhythm = TypingRhythm(self.loaded.settings.completion.debounce_ms / 1000)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from reaper_lsp.engine import Engine

            engine = Engine(self.loaded, workspace_roots=self.workspace_roots, editor=self.editor)
            engine.notify = self.tell_user
            for secret in engine.secrets():
                register_secret(secret)
            self._engine = engine
        return self._engine

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
            self.window_show_message(
                lsp.ShowMessageParams(
                    lsp.MessageType.Error,
                    "reaper-lsp configuration: " + "; ".join(loaded.errors),
                )
            )
        return loaded

    def apply_config(self, loaded: config.LoadedConfig) -> None:
        self.loaded = loaded
        if self._engine is not None:
            self._engine.reconfigure(loaded)
            for secret in self._engine.secrets():
                register_secret(secret)
        self.rhythm.floor = loaded.settings.completion.debounce_ms / 1000
        self.rhythm.cap = max(self.rhythm.cap, self.rhythm.floor)

    async def complete(
        self, uri: str, pos: lsp.Position, kind: str, *, invoked: bool = False
    ) -> Suggestion | None:
        """Run one completion; a newer request of the same kind for the same document cancels
        this one (and its upstream HTTP request) and this one answers with nothing. Requests
        the editor sent on its own wait out the typing rhythm first (see core/debounce.py);
        ones the user asked for (`invoked`) do not."""
        key = (uri, kind)
        older = self.inflight.get(key)
        if older is not None and not older.done():
            older.cancel()

        async def debounce() -> None:
            wait = self.rhythm.wait(uri, time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)

        task = asyncio.ensure_future(
            self.engine.complete(
                uri,
                Position(pos.line, pos.character),
                before_network=None if invoked else debounce,
            )
        )
        self.inflight[key] = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return None
        except ProviderError as exc:
            log.warning("completion failed: %s", exc)
            return None
        except Exception:  # a bug must cost one suggestion, not the editor's patience
            log.exception("completion failed unexpectedly")
            return None
        finally:
            if self.inflight.get(key) is task:
                del self.inflight[key]
            self.notify_status_changes()

    def tell_user(self, message: str) -> None:
        self.window_show_message(lsp.ShowMessageParams(lsp.MessageType.Warning, message))

    def open_in_browser(self, url: str) -> None:
        """Ask the editor to open `url` when it can (window/showDocument); never waits."""
        caps = self.client_capabilities.window
        if caps is None or caps.show_document is None or not caps.show_document.support:
            return
        params = lsp.ShowDocumentParams(uri=url, external=True, take_focus=True)
        self.protocol.send_request(lsp.WINDOW_SHOW_DOCUMENT, params)

    def notify_status_changes(self) -> None:
        status = self.engine.chain.snapshot()
        for name, health in status.items():
            state = str(health.get("state", ""))
            if self.sent_states.get(name, "unknown") != state and state != "unknown":
                self.sent_states[name] = state
                self.protocol.notify(
                    "reaper/status",
                    {"provider": name, "state": state, "message": health.get("lastError", "")},
                )
        # A sign-in that ended outside the commands (revoked, expired, or made by another
        # process or `reaper-lsp login`) is reported too.
        for account, info in self.engine.sign_in_status().items():
            signed_in = bool(info.get("signedIn")) if isinstance(info, dict) else False
            provider = "copilot" if account == "github" else account
            state = "signedIn" if signed_in else "signedOut"
            known = self.sent_states.get(f"sign-in:{provider}")
            self.sent_states[f"sign-in:{provider}"] = state
            if known is not None and known != state:
                self.protocol.notify("reaper/status", {"provider": provider, "state": state})


def create_server() -> ReaperServer:
    server = ReaperServer()

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: ReaperServer, params: lsp.InitializeParams) -> None:
        # Start importing the engine now, off the event loop; it is built after the answer.
        threading.Thread(
            target=importlib.import_module, args=("reaper_lsp.engine",), daemon=True
        ).start()
        roots = [_uri_to_path(f.uri) for f in params.workspace_folders or ()]
        if not roots and params.root_uri:
            roots = [_uri_to_path(params.root_uri)]
        ls.workspace_roots = [r for r in roots if r is not None]
        options = params.initialization_options
        ls.init_options = dict(options) if isinstance(options, dict) else {}
        client = params.client_info
        editor = f"{client.name}/{client.version or '0'}" if client is not None else ""
        ls.editor = editor.replace(" ", "-")
        ls.apply_config(ls.reload_config())

    @server.feature(lsp.INITIALIZED)
    async def initialized(ls: ReaperServer, params: lsp.InitializedParams) -> None:
        await ls.engine.start()

    @server.feature(lsp.SHUTDOWN)
    async def shutdown(ls: ReaperServer, params: None) -> None:
        if ls._engine is not None:
            ls._engine.save_status()
            await ls._engine.aclose()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(
        ls: ReaperServer, params: lsp.DidChangeConfigurationParams
    ) -> None:
        ls.client_settings = params.settings if isinstance(params.settings, dict) else {}
        ls.apply_config(ls.reload_config())

    @server.feature(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, lsp.InlineCompletionOptions())
    async def inline_completion(
        ls: ReaperServer, params: lsp.InlineCompletionParams
    ) -> lsp.InlineCompletionList:
        invoked = params.context.trigger_kind == lsp.InlineCompletionTriggerKind.Invoked
        found = await ls.complete(
            params.text_document.uri, params.position, "inline", invoked=invoked
        )
        if found is None:
            return lsp.InlineCompletionList(items=[])
        # No `range`: the text is inserted at the cursor. (With a range, Neovim 0.12 draws the
        # item as an overlay that hides the text after the cursor.)
        return lsp.InlineCompletionList(items=[lsp.InlineCompletionItem(insert_text=found.text)])

    @server.feature(
        lsp.TEXT_DOCUMENT_COMPLETION,
        lsp.CompletionOptions(trigger_characters=[".", "(", " ", "\n"], resolve_provider=False),
    )
    async def completion(ls: ReaperServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        invoked = (
            params.context is not None
            and params.context.trigger_kind == lsp.CompletionTriggerKind.Invoked
        )
        found = await ls.complete(
            params.text_document.uri, params.position, "menu", invoked=invoked
        )
        if found is None:
            return lsp.CompletionList(is_incomplete=True, items=[])
        return lsp.CompletionList(is_incomplete=True, items=[_menu_item(ls, params, found)])

    @server.command("reaper.status")
    def status(ls: ReaperServer, *args: Any) -> dict[str, object]:
        return ls.engine.status()

    @server.command("reaper.clearCache")
    def clear_cache(ls: ReaperServer, *args: Any) -> dict[str, object]:
        ls.engine.cache.clear()
        return {"cleared": True}

    @server.command("reaper.signIn")
    async def sign_in(ls: ReaperServer, *args: Any) -> dict[str, object]:
        which = _sign_in_provider(args)
        try:
            if which == "copilot":
                code = await ls.engine.github.start_sign_in()
                ls.open_in_browser(code.verification_uri)
                return {
                    "provider": "copilot",
                    "userCode": code.user_code,
                    "verificationUri": code.verification_uri,
                    "expiresIn": code.expires_in,
                    "interval": code.interval,
                }
            url = await ls.engine.google.start_sign_in()
            ls.open_in_browser(url)
            return {"provider": "google", "authorizeUrl": url}
        except Exception as exc:
            raise CommandFailed(f"sign-in to {which} could not start: {exc}") from None

    @server.command("reaper.signInConfirm")
    async def sign_in_confirm(ls: ReaperServer, *args: Any) -> dict[str, object]:
        which = _sign_in_provider(args)
        try:
            if which == "copilot":
                user = await ls.engine.github.confirm_sign_in()
                ls.engine.github.start()
            else:
                user = await ls.engine.google.confirm_sign_in()
        except Exception as exc:
            ls.protocol.notify(
                "reaper/status", {"provider": which, "state": "signedOut", "message": str(exc)}
            )
            raise CommandFailed(f"sign-in to {which} failed: {exc}") from None
        ls.engine.cache.clear()
        ls.sent_states[f"sign-in:{which}"] = "signedIn"
        ls.protocol.notify("reaper/status", {"provider": which, "state": "signedIn", "user": user})
        return {"status": "OK", "provider": which, "user": user}

    @server.command("reaper.signOut")
    async def sign_out(ls: ReaperServer, *args: Any) -> dict[str, object]:
        which = _sign_in_provider(args)
        if which == "copilot":
            await ls.engine.github.sign_out()
        else:
            await ls.engine.google.sign_out()
        ls.engine.cache.clear()
        ls.sent_states[f"sign-in:{which}"] = "signedOut"
        ls.protocol.notify("reaper/status", {"provider": which, "state": "signedOut"})
        return {"status": "OK", "provider": which}

    @server.command("reaper.chat")
    async def chat(ls: ReaperServer, *args: Any) -> dict[str, object]:
        request = args[0] if args and isinstance(args[0], dict) else {}
        conversation = str(request.get("conversationId") or "default")
        messages = await _chat_messages(ls, request)
        parts: list[str] = []
        provider = ""
        async for name, piece in ls.engine.chat(messages):
            provider = name
            parts.append(piece)
            ls.protocol.notify("reaper/chatDelta", {"conversationId": conversation, "delta": piece})
        return {"conversationId": conversation, "provider": provider, "text": "".join(parts)}

    return server


class CommandFailed(JsonRpcException):
    """A command that could not do its job; the message is for the user (no secrets)."""

    CODE = -32803  # LSP RequestFailed
    MESSAGE = "Request failed"


def _sign_in_provider(args: tuple[Any, ...]) -> str:
    """`copilot` or `google` from `{provider}` (aliases: github; claude, vertex)."""
    request = args[0] if args and isinstance(args[0], dict) else {}
    name = str(request.get("provider") or "copilot").lower()
    which = SIGN_IN_PROVIDERS.get(name)
    if which is None:
        raise JsonRpcInvalidParams(f"unknown provider {name!r}; sign in to one of: copilot, google")
    return which


def _menu_item(
    ls: ReaperServer, params: lsp.CompletionParams, found: Suggestion
) -> lsp.CompletionItem:
    """One menu item whose text edit replaces the word being typed with word + suggestion, so
    editors that filter by the word before the cursor keep showing it."""
    doc = ls.engine.documents.get(params.text_document.uri)
    line = doc.line_text(params.position.line) if doc is not None else ""
    cursor = utf16_to_index(line, params.position.character)
    word = _WORD_TAIL.search(line[:cursor])
    typed = word.group(0) if word else ""
    start = index_to_utf16(line, cursor - len(typed))
    first_line = found.text.strip().splitlines()[0] if found.text.strip() else found.text
    label = (typed + found.text.split("\n", 1)[0]).strip() or first_line
    return lsp.CompletionItem(
        label=label[:80],
        kind=lsp.CompletionItemKind.Text,
        detail=f"reaper-lsp · {found.provider}" + (f" ({found.model})" if found.model else ""),
        documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, f"```\n{typed}{found.text}\n```"),
        sort_text="\x00",
        filter_text=typed + found.text,
        preselect=True,
        insert_text_format=lsp.InsertTextFormat.PlainText,
        text_edit=lsp.TextEdit(
            lsp.Range(lsp.Position(params.position.line, start), params.position),
            typed + found.text,
        ),
    )


async def _chat_messages(ls: ReaperServer, request: dict[str, Any]) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    for item in request.get("messages") or []:
        if isinstance(item, dict) and item.get("role") in ("system", "user", "assistant"):
            messages.append(ChatMessage(item["role"], str(item.get("content", ""))))
    prompt = request.get("prompt")
    if isinstance(prompt, str) and prompt:
        doc_info = request.get("textDocument")
        if isinstance(doc_info, dict) and isinstance(doc_info.get("uri"), str):
            doc = await ls.engine.document(doc_info["uri"])
            if doc is not None:
                name = ls.engine.relative_path(doc.uri)
                prompt = f"{prompt}\n\nFile {name}:\n```\n{doc.text[:20000]}\n```"
        messages.append(ChatMessage("user", prompt))
    return messages
