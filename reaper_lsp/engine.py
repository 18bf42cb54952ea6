"""The completion engine: documents → context → cache → chain → suggestion.

Everything the server and the CLI share lives here, free of pygls: the server's handlers only
translate LSP types into calls of this class, and `reaper-lsp complete` drives it directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import platformdirs

from reaper_lsp import __version__
from reaper_lsp.config import LoadedConfig, Settings
from reaper_lsp.core.cache import CachedSuggestion, CompletionCache
from reaper_lsp.core.context import build_context
from reaper_lsp.core.document import Document, DocumentStore, Position
from reaper_lsp.core.postprocess import is_complete, postprocess, wants_multiline
from reaper_lsp.core.types import CompletionContext, Suggestion
from reaper_lsp.net.client import Clients
from reaper_lsp.net.metrics import Metrics
from reaper_lsp.net.retry import RetryPolicy
from reaper_lsp.providers.base import ChatMessage, ChatRequest, CompletionRequest, Provider
from reaper_lsp.providers.chain import Chain, ChainResult
from reaper_lsp.providers.claude import ClaudeProvider
from reaper_lsp.providers.copilot import CopilotProvider
from reaper_lsp.providers.local import LocalProvider
from reaper_lsp.providers.ollama import OllamaProvider
from reaper_lsp.providers.openai import OpenAIProvider

if TYPE_CHECKING:
    from reaper_lsp.auth.github import GitHubAuth
    from reaper_lsp.auth.google import GoogleAuth
    from reaper_lsp.auth.store import TokenStore

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""Unopened files larger than this are not read from disk for a completion."""


@dataclass(frozen=True, slots=True)
class _Shaper:
    context: CompletionContext
    multiline: bool

    def shape(self, raw: str) -> str | None:
        return postprocess(raw, self.context, multiline=self.multiline)

    def is_complete(self, partial: str) -> bool:
        return is_complete(partial, self.context, multiline=self.multiline)


def uri_to_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


class Engine:
    """Long-lived state of one server (or one CLI run)."""

    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        env: Mapping[str, str] | None = None,
        workspace_roots: Sequence[Path] = (),
        editor: str = "",
    ) -> None:
        self.loaded = loaded
        self.env = dict(os.environ if env is None else env)
        self.workspace_roots = list(workspace_roots)
        self.documents = DocumentStore()
        self.metrics = Metrics()
        settings = loaded.settings
        self.clients = Clients(settings.http)
        self.cache = CompletionCache(
            ttl_seconds=settings.cache.ttl_seconds,
            max_entries=settings.cache.max_entries,
            clock=time.monotonic,
        )
        self.local = LocalProvider(self.documents, workspace_roots=self.workspace_roots)
        self.editor = editor
        """`name/version` of the editor, from `clientInfo` (Copilot's Editor-Version header)."""
        self.notify: Callable[[str], None] = lambda message: log.warning("%s", message)
        """Tells the user something once (the server turns it into window/showMessage)."""
        self._store: TokenStore | None = None
        self._github: GitHubAuth | None = None
        self._google: GoogleAuth | None = None
        self.chain = Chain(self._build_providers(settings), policy=self._policy(settings))
        self.started = time.time()

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    @staticmethod
    def _policy(settings: Settings) -> RetryPolicy:
        return RetryPolicy(
            max_retries=settings.http.max_retries,
            base_backoff=settings.http.retry_backoff / 1000,
        )

    # -- credentials (imported on first use: start-up does not need the sign-in flows) ---------

    @property
    def store(self) -> TokenStore:
        if self._store is None:
            from reaper_lsp.auth.store import TokenStore

            self._store = TokenStore()
        return self._store

    @property
    def github(self) -> GitHubAuth:
        if self._github is None:
            from reaper_lsp.auth.github import GitHubAuth

            self._github = GitHubAuth(
                self.settings.providers.copilot,
                self.store,
                self.clients.get("github"),
                env=self.env,
            )
        return self._github

    @property
    def google(self) -> GoogleAuth:
        if self._google is None:
            from reaper_lsp.auth.google import GoogleAuth

            self._google = GoogleAuth(
                self.settings.auth.google, self.store, self.clients.get("google"), env=self.env
            )
        return self._google

    def _build_providers(self, settings: Settings) -> dict[str, Provider]:
        p = settings.providers
        providers: dict[str, Provider] = {
            "copilot": CopilotProvider(
                p.copilot,
                auth=self.github,
                clients=self.clients,
                metrics=self.metrics.provider("copilot"),
                editor=self.editor,
                notify=lambda message: self.notify(message),
            ),
            "claude": ClaudeProvider(
                p.claude,
                env=self.env,
                clients=self.clients,
                metrics=self.metrics.provider("claude"),
                google=self.google if p.claude.backend == "vertex" else None,
            ),
            "openai": OpenAIProvider(
                p.openai,
                env=self.env,
                clients=self.clients,
                metrics=self.metrics.provider("openai"),
            ),
            "ollama": OllamaProvider(
                p.ollama, clients=self.clients, metrics=self.metrics.provider("ollama")
            ),
            "local": self.local,
        }
        return providers

    async def start(self) -> None:
        """Background work that must not delay `initialize`: the workspace scan."""
        await self.local.start_workspace_scan()
        if "copilot" in self.settings.completion.providers and self.github.signed_in():
            self.github.start()  # keep the Copilot token fresh from now on
        await self.prewarm()

    async def prewarm(self) -> None:
        """Open the connection to the first usable provider of each chain, so the first
        keystroke does not pay for DNS, TCP and TLS; the pool keeps it for idle_timeout."""
        firsts = {
            next((n for n in self.chain.usable(order) if n != "local"), None)
            for order in (self.settings.completion.providers, self.settings.chat.providers)
        }
        warm = [getattr(self.chain.providers[name], "prewarm", None) for name in firsts if name]
        await asyncio.gather(*(w() for w in warm if w is not None), return_exceptions=True)

    def reconfigure(self, loaded: LoadedConfig) -> None:
        """Apply new settings; providers and HTTP clients are rebuilt only when theirs changed."""
        old = self.loaded.settings
        self.loaded = loaded
        new = loaded.settings
        if new.http != old.http:
            self.clients.update(new.http)
        if new.providers.copilot != old.providers.copilot and self._github is not None:
            old_github, self._github = self._github, None
            _background(old_github.aclose())
        if new.auth != old.auth and self._google is not None:
            old_google, self._google = self._google, None
            _background(old_google.aclose())
        if new.providers != old.providers or new.http != old.http or new.auth != old.auth:
            health = self.chain.health
            self.chain = Chain(self._build_providers(new), policy=self._policy(new))
            self.chain.health.update({k: v for k, v in health.items() if k in self.chain.health})
        if new.cache != old.cache:
            self.cache = CompletionCache(
                ttl_seconds=new.cache.ttl_seconds,
                max_entries=new.cache.max_entries,
                clock=time.monotonic,
            )

    def secrets(self) -> list[str]:
        """Every credential in force, so logging can redact it."""
        p = self.settings.providers
        found = [p.openai.resolve_api_key(self.env), p.claude.resolve_api_key(self.env)]
        return [s for s in found if s]

    # -- completion ---------------------------------------------------------------------------

    async def document(self, uri: str) -> Document | None:
        """An open document, or the file on disk for a `file:` URI the editor has not opened
        (read in a worker thread: the event loop never waits on the disk)."""
        doc = self.documents.get(uri)
        if doc is not None:
            return doc
        path = uri_to_path(uri)
        if path is None:
            return None
        text = await asyncio.to_thread(_read_small_file, path)
        return None if text is None else Document(uri, language_of(path), 0, text)

    def relative_path(self, uri: str) -> str:
        path = uri_to_path(uri)
        if path is None:
            return urlparse(uri).path.rsplit("/", 1)[-1] or uri
        for root in self.workspace_roots:
            try:
                return path.relative_to(root).as_posix()
            except ValueError:
                continue
        return path.name

    def context_at(self, doc: Document, position: Position) -> CompletionContext:
        c = self.settings.completion
        return build_context(
            doc,
            position,
            max_prefix_chars=c.max_prefix_chars,
            max_suffix_chars=c.max_suffix_chars,
            path=self.relative_path(doc.uri),
        )

    def cached(self, ctx: CompletionContext, order: Sequence[str]) -> CachedSuggestion | None:
        hit = self.cache.typed_through(ctx.prefix, ctx.suffix)
        if hit is not None:
            return hit
        for name in self.chain.usable(order):
            provider = self.chain.providers[name]
            found = self.cache.get((name, provider.model_for("completion"), ctx.prefix, ctx.suffix))
            if found is not None:
                return found
        self.cache.miss()
        return None

    async def complete(
        self,
        uri: str,
        position: Position,
        *,
        before_network: Callable[[], Awaitable[None]] | None = None,
    ) -> Suggestion | None:
        """The suggestion at `position`. `before_network` runs after a cache miss, before any
        provider is asked (the server's debounce: cancelling it there costs nothing upstream)."""
        doc = await self.document(uri)
        if doc is None:
            log.warning("completion for %s, which is neither open nor a readable file", uri)
            return None
        ctx = self.context_at(doc, position)
        return await self.complete_context(ctx, before_network=before_network)

    async def complete_context(
        self,
        ctx: CompletionContext,
        *,
        before_network: Callable[[], Awaitable[None]] | None = None,
    ) -> Suggestion | None:
        c = self.settings.completion
        order = c.providers
        hit = self.cached(ctx, order)
        if hit is not None:
            return Suggestion(hit.text, hit.provider, hit.model)
        if before_network is not None:
            await before_network()
        multiline = wants_multiline(ctx, c.multiline)
        request = CompletionRequest(ctx, max_tokens=c.max_tokens, multiline=multiline)
        result: ChainResult = await self.chain.complete(
            request,
            order,
            _Shaper(ctx, multiline),
            timeout=c.timeout_ms / 1000,
            hedge=c.hedge_ms / 1000,
        )
        suggestion = result.suggestion
        if suggestion is not None and suggestion.provider != "local":
            self.cache.put(
                (suggestion.provider, suggestion.model, ctx.prefix, ctx.suffix),
                CachedSuggestion(suggestion.text, suggestion.provider, suggestion.model),
            )
        if suggestion is None:
            log.info(
                "no suggestion: %s",
                "; ".join(f"{a.provider}: {a.outcome}" for a in result.attempts),
            )
        return suggestion

    # -- chat ---------------------------------------------------------------------------------

    async def chat(self, messages: Sequence[ChatMessage]) -> AsyncIterator[tuple[str, str]]:
        request = ChatRequest(tuple(messages), max_tokens=self.settings.chat.max_tokens)
        async for item in self.chain.chat(
            request, self.settings.chat.providers, timeout=self.settings.http.read_timeout / 1000
        ):
            yield item

    # -- status -------------------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        health = self.chain.snapshot()
        metrics = self.metrics.snapshot()
        providers: dict[str, object] = {}
        for name, provider in self.chain.providers.items():
            reason = provider.unusable_reason()
            providers[name] = {
                "configured": reason is None,
                "reason": reason or "",
                "completionModel": provider.model_for("completion"),
                "chatModel": provider.model_for("chat"),
                "health": health.get(name, {}),
                "http": metrics.get(name, {}),
            }
        return {
            "version": __version__,
            "signIn": self.sign_in_status(),
            "uptimeSeconds": round(time.time() - self.started, 1),
            "configFile": str(self.loaded.user_file) if self.loaded.user_file else "",
            "completionChain": [*self.settings.completion.providers, "local"],
            "providers": providers,
            "cache": {"entries": len(self.cache), **self.cache.stats.as_dict()},
            "documents": len(self.documents),
        }

    def sign_in_status(self) -> dict[str, object]:
        """Who is signed in where, never the credentials themselves."""
        out: dict[str, object] = {
            "github": {
                "signedIn": self.github.signed_in(),
                "source": self.github.token_source() or "",
            }
        }
        if self._google is not None or self.settings.providers.claude.backend == "vertex":
            out["google"] = {
                "signedIn": self.google.signed_in(),
                "source": self.google.token_source() or "",
            }
        return out

    def save_status(self) -> None:
        """Leave this run's figures where `reaper-lsp status` finds them."""
        path = status_file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.status(), indent=2), encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            log.warning("could not save status to %s: %s", path, exc)

    async def aclose(self) -> None:
        for provider in self.chain.providers.values():
            await provider.aclose()
        for auth in (self._github, self._google):
            if auth is not None:
                await auth.aclose()
        await self.clients.aclose()


def _read_small_file(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_DOCUMENT_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


_background_tasks: set[asyncio.Task[None]] = set()


def _background(coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _background_tasks.add(task)
    task.add_done_callback(_background_tasks.discard)


def status_file() -> Path:
    return Path(platformdirs.user_state_dir("reaper-lsp")) / "last-run.json"


_EXTENSIONS = {
    ".py": "python", ".js": "javascript", ".ts": "typescript", ".tsx": "typescriptreact",
    ".jsx": "javascriptreact", ".rs": "rust", ".go": "go", ".c": "c", ".h": "c", ".cpp": "cpp",
    ".java": "java", ".rb": "ruby", ".lua": "lua", ".sh": "shellscript", ".md": "markdown",
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".html": "html",
    ".css": "css", ".kt": "kotlin", ".swift": "swift", ".php": "php", ".cs": "csharp",
    ".zig": "zig", ".hs": "haskell", ".ex": "elixir", ".sql": "sql",
}  # fmt: skip


def language_of(path: Path) -> str:
    return _EXTENSIONS.get(path.suffix.lower(), "plaintext")
