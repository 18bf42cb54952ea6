"""The application: builds every part from the configuration (HTTP clients, credentials,
providers, the chain, the cache, the services) and rebuilds what changed on `reconfigure`.
Nothing else: the work is done by the parts."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import time
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reaper_lsp.config import LoadedConfig, Settings
from reaper_lsp.core.cache import CompletionCache
from reaper_lsp.net import keepalive
from reaper_lsp.net.altsvc import ALT_SVC_FILE
from reaper_lsp.net.client import Clients
from reaper_lsp.net.h3_state import read_json
from reaper_lsp.net.metrics import Metrics
from reaper_lsp.net.retry import RetryPolicy
from reaper_lsp.providers.base import Provider
from reaper_lsp.providers.chain import Chain
from reaper_lsp.providers.claude import ClaudeProvider
from reaper_lsp.providers.copilot import CopilotProvider
from reaper_lsp.providers.llamacpp import LlamaCppProvider
from reaper_lsp.providers.local import LocalProvider
from reaper_lsp.providers.ollama import OllamaProvider
from reaper_lsp.providers.openai import OpenAIProvider
from reaper_lsp.services.chat import ChatService
from reaper_lsp.services.completion import CompletionService
from reaper_lsp.services.status import Status, StatusEvents, save_last_run, snapshot
from reaper_lsp.workspace import Workspace

if TYPE_CHECKING:
    from reaper_lsp.auth.github import GitHubAuth
    from reaper_lsp.auth.google import GoogleAuth
    from reaper_lsp.auth.store import TokenStore

log = logging.getLogger(__name__)


class App:
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
        self.editor = editor
        """`name/version` of the editor, from `clientInfo` (Copilot's Editor-Version header)."""
        self.started = time.time()
        self.workspace = Workspace(workspace_roots)
        self.metrics = Metrics()
        self.clients = Clients(loaded.settings.http, state_dir=_data_dir() / "http3")
        self._store: TokenStore | None = None
        self._github: GitHubAuth | None = None
        self._google: GoogleAuth | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.local = LocalProvider(self.workspace.documents, workspace_roots=self.workspace.roots)
        self.events = StatusEvents(self)
        self.cache = _cache(loaded.settings)
        self.chain = self._build_chain(loaded.settings)
        settings = loaded.settings
        self.completion = CompletionService(
            self.workspace, self.chain, self.cache, settings.completion
        )
        self.chat = ChatService(
            self.workspace, self.chain, settings.chat, timeout=settings.http.read_timeout / 1000
        )

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

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
                lambda: self.clients.get("github"),
                env=self.env,
            )
        return self._github

    @property
    def google(self) -> GoogleAuth:
        if self._google is None:
            from reaper_lsp.auth.google import GoogleAuth

            self._google = GoogleAuth(
                self.settings.auth.google,
                self.store,
                lambda: self.clients.get("google"),
                env=self.env,
            )
        return self._google

    @property
    def google_built(self) -> bool:
        return self._google is not None

    # -- building -------------------------------------------------------------------------------

    def _build_chain(self, settings: Settings) -> Chain:
        p = settings.providers
        providers: dict[str, Provider] = {
            "copilot": CopilotProvider(
                p.copilot,
                auth=self.github,
                clients=self.clients,
                metrics=self.metrics.provider("copilot"),
                editor=self.editor,
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
                p.ollama,
                clients=self.clients,
                metrics=self.metrics.provider("ollama"),
                prompt_chars=settings.completion.max_prefix_chars
                + settings.completion.max_suffix_chars,
                max_tokens=settings.completion.max_tokens,
            ),
            "llamacpp": LlamaCppProvider(
                p.llamacpp,
                env=self.env,
                clients=self.clients,
                metrics=self.metrics.provider("llamacpp"),
                documents=self.workspace.documents,
                name_of=self.workspace.relative_path,
            ),
            "local": self.local,
        }
        for provider in providers.values():
            budgets = getattr(provider, "budgets", None)
            if budgets is not None:  # a prompt cut to fit a model's context is told once
                budgets.notify = self.events.tell_once
        chain = Chain(
            providers,
            policy=RetryPolicy(
                max_retries=settings.http.max_retries,
                base_backoff=settings.http.retry_backoff / 1000,
            ),
        )
        chain.on_event = self.events.provider_event
        return chain

    def reconfigure(self, loaded: LoadedConfig) -> None:
        """Apply new settings; providers and HTTP clients are rebuilt only when theirs changed."""
        old = self.loaded.settings
        self.loaded = loaded
        new = loaded.settings
        if new.http != old.http:
            self.clients.update(new.http)
        if new.providers.copilot != old.providers.copilot and self._github is not None:
            old_github, self._github = self._github, None
            self._spawn(old_github.aclose())
        if new.auth != old.auth and self._google is not None:
            old_google, self._google = self._google, None
            self._spawn(old_google.aclose())
        if new.providers != old.providers or new.http != old.http or new.auth != old.auth:
            old_chain = self.chain
            self.chain = self._build_chain(new)
            health = old_chain.health
            self.chain.health.update({k: v for k, v in health.items() if k in self.chain.health})
            for name, provider in old_chain.providers.items():
                if provider is not self.chain.providers.get(name):
                    self._spawn(provider.aclose())
            if "copilot" in new.completion.providers and self.github.signed_in():
                self.github.start()  # a rebuilt sign-in keeps its token fresh too
            self.events.forget_told()  # the user may have fixed what we told them about
        if new.cache != old.cache:
            self.cache = _cache(new)
        self.completion.reconfigure(self.chain, self.cache, new.completion)
        self.chat.reconfigure(self.chain, new.chat, timeout=new.http.read_timeout / 1000)

    def secrets(self) -> list[str]:
        """Every credential in force, so logging can redact it."""
        p = self.settings.providers
        found = [
            p.openai.resolve_api_key(self.env),
            p.claude.resolve_api_key(self.env),
            p.llamacpp.resolve_api_key(self.env),
        ]
        return [s for s in found if s]

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Background work that must not delay `initialize`: the workspace scan, the Copilot
        token, the first connections."""
        await self.local.start_workspace_scan()
        if "copilot" in self.settings.completion.providers and self.github.signed_in():
            self.github.start()  # keep the Copilot token fresh from now on
        self.events.check_sign_ins()
        if self._quic_likely():
            # aioquic takes ~200 ms to import: do it in a thread, not on the event loop the
            # editor's requests are served from, before a warm-up needs QUIC.
            await asyncio.to_thread(importlib.import_module, "reaper_lsp.net.h3")
        await self.prewarm()
        self._spawn(self._keep_warm())

    def _quic_likely(self) -> bool:
        """QUIC is forced, or an earlier run learned an HTTP/3 origin (otherwise aioquic is
        imported only if one is learned)."""
        protocol = self.settings.http.protocol
        if protocol == "http3":
            return True
        if protocol != "auto":
            return False
        return bool(read_json(_data_dir() / "http3" / ALT_SVC_FILE).get("h3"))

    async def prewarm(self) -> None:
        """Open the connection to the first usable provider of each chain, so the first
        keystroke does not pay for DNS, TCP and TLS; the pool keeps it for idle_timeout."""
        firsts = {
            next((n for n in self.chain.usable(order) if n != "local"), None)
            for order in (self.settings.completion.providers, self.settings.chat.providers)
        }
        warm = [getattr(self.chain.providers[name], "prewarm", None) for name in firsts if name]
        await asyncio.gather(*(w() for w in warm if w is not None), return_exceptions=True)

    async def _keep_warm(self) -> None:
        """Keep the first remote provider's connection open while the editor is idle."""
        while True:
            await asyncio.sleep(keepalive.INTERVAL)
            usable = self.chain.usable(self.settings.completion.providers)
            first = next((n for n in usable if n != "local"), None)
            keep = getattr(self.chain.providers.get(first or ""), "keep_warm", None)
            if keep is not None:
                try:
                    await keep()
                except Exception as exc:  # warmth is a nicety: never let it break anything
                    log.debug("keeping %s warm failed: %s", first, type(exc).__name__)

    def status(self) -> Status:
        return snapshot(self)

    def save_status(self) -> None:
        save_last_run(self.status())

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        for provider in self.chain.providers.values():
            await provider.aclose()
        for auth in (self._github, self._google):
            if auth is not None:
                await auth.aclose()
        await self.clients.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("reaper-lsp"))


def _cache(settings: Settings) -> CompletionCache:
    return CompletionCache(
        ttl_seconds=settings.cache.ttl_seconds,
        max_entries=settings.cache.max_entries,
        clock=time.monotonic,
    )
