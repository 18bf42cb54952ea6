"""The App: what every editor session shares — the user-level settings, the completion cache,
the HTTP clients and their warm connections, the token store and sign-ins, the remote providers
(from the registry) and their health in the chain, conversations, metrics and status events. It
builds those parts from the settings and rebuilds what changed on `reconfigure`; the work itself
is done by the parts and by the per-session services (`services/session.py`).

One App serves one in-process server, one CLI run, or every session of the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reaper_lsp.config import LoadedConfig
from reaper_lsp.core.cache import CompletionCache
from reaper_lsp.net import keepalive
from reaper_lsp.net.altsvc import ALT_SVC_FILE
from reaper_lsp.net.client import Clients
from reaper_lsp.net.h3_state import read_json
from reaper_lsp.net.metrics import Metrics
from reaper_lsp.net.retry import RetryPolicy
from reaper_lsp.providers.base import LOCAL, Parts
from reaper_lsp.providers.chain import Chain
from reaper_lsp.providers.registry import build_all
from reaper_lsp.services.audit import AuditLedger, state_home
from reaper_lsp.services.conversations import Conversations
from reaper_lsp.services.privacy import Toggles
from reaper_lsp.services.signin import SignInService
from reaper_lsp.services.status import StatusEvents
from reaper_lsp.services.usage import Usage
from reaper_lsp.settings import Settings

if TYPE_CHECKING:
    from reaper_lsp.auth.github import GitHubAuth
    from reaper_lsp.auth.google import GoogleAuth
    from reaper_lsp.auth.store import TokenStore

log = logging.getLogger(__name__)


class App:
    """The shared parts. `settings` are the user's own (config file and environment): editor
    sessions overlay only what is theirs (completion, chat), never endpoints or credentials."""

    def __init__(self, loaded: LoadedConfig, *, env: Mapping[str, str] | None = None) -> None:
        self.loaded = loaded
        self.env = dict(os.environ if env is None else env)
        self.started = time.time()
        self.metrics = Metrics()
        self.clients = Clients(loaded.user_settings.http, state_dir=data_dir() / "http3")
        self._store: TokenStore | None = None
        self._github: GitHubAuth | None = None
        self._google: GoogleAuth | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._started = False
        self._warm: set[str] = set()
        """Remote providers opened ahead of need; the keep-warm loop keeps them so."""
        self._orders: set[tuple[str, ...]] = set()
        """The provider orders sessions asked to start with (Copilot's token is kept fresh only
        when one of them uses Copilot)."""
        self.cache = _cache(loaded.user_settings)
        self.conversations = Conversations(loaded.user_settings.chat.history_chars)
        self.ledger = AuditLedger(state_home(self.env), self.daily_budget)
        """The audit log and the token budgets: told of every upstream request."""
        self.usage = Usage(self.ledger.feedback)
        self.toggles = Toggles()
        """`reaper.toggle`'s state: every editor window agrees (in memory, not saved)."""
        self.events = StatusEvents(lambda: self.signin.accounts())
        self.signin = SignInService(
            lambda: self.github,
            lambda: self.google,
            events=self.events,
            signed_in=lambda: self.cache.clear(),
            google_wanted=lambda: (
                self._google is not None or self.settings.providers.claude.backend == "vertex"
            ),
        )
        self.chain = self._build_chain(loaded.user_settings)

    @property
    def settings(self) -> Settings:
        """The user's own settings (defaults, config file): never a session's overlay."""
        return self.loaded.user_settings

    @property
    def user_file(self) -> Path | None:
        return self.loaded.user_file

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

    # -- building -------------------------------------------------------------------------------

    def _build_chain(self, settings: Settings) -> Chain:
        parts = Parts(
            settings=settings,
            env=self.env,
            clients=self.clients,
            metrics=self.metrics,
            github=lambda: self.github,
            google=lambda: self.google,
            tell=self.events.tell_once,
            ledger=self.ledger,
        )
        chain = Chain(
            build_all(parts),
            policy=RetryPolicy(
                max_retries=settings.http.max_retries,
                base_backoff=settings.http.retry_backoff / 1000,
            ),
        )
        chain.health.on_event = self.events.provider_event
        return chain

    def reconfigure(self, loaded: LoadedConfig) -> None:
        """Apply new user-level settings; providers and HTTP clients are rebuilt only when
        theirs changed."""
        old = self.settings
        self.loaded = loaded
        new = self.settings
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
            self._warm.clear()
            if self._copilot_wanted() and self.github.signed_in():
                self.github.start()  # a rebuilt sign-in keeps its token fresh too
            self.events.forget_told()  # the user may have fixed what we told them about
        if new.cache != old.cache:
            self.cache = _cache(new)
        self.conversations.budget = new.chat.history_chars

    def daily_budget(self, provider: str) -> int:
        """`[providers.NAME] daily_token_budget` (0: none), from the user's own settings."""
        return int(getattr(getattr(self.settings.providers, provider, None),
                           "daily_token_budget", 0))  # fmt: skip

    def secrets(self) -> list[str]:
        """Every credential in force, so logging can redact it."""
        p = self.settings.providers
        found = [p.openai.resolve_api_key(self.env), p.claude.resolve_api_key(self.env),
                 p.llamacpp.resolve_api_key(self.env)]  # fmt: skip
        return [s for s in found if s]

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self, orders: Iterable[Sequence[str]] = ()) -> None:
        """Background work that must not delay `initialize`, done once: the Copilot token kept
        fresh, aioquic imported when QUIC is likely, the connections of `orders` opened, and
        kept warm from then on."""
        self._orders.update(tuple(order) for order in orders)
        if self._copilot_wanted() and self.github.signed_in():
            self.github.start()  # keep the Copilot token fresh from now on (once started, kept)
        if self._started:
            await self.prewarm(orders)
            return
        self._started = True
        self.events.check_sign_ins()
        # In threads, before a first request needs them (on the event loop the editors'
        # requests are served from, they would hold them up): aioquic when QUIC is likely,
        # what the first TCP connection imports, and the TLS roots unless the warm-up has
        # loaded them already. Where QUIC is likely, the warm-up (which would take the
        # session ticket) waits for aioquic, and the editor's first request may go first.
        self._spawn(self._keep_warm())
        if self._quic_likely():
            await self.clients.prepare(quic=True)
            await self.prewarm(orders)
            return
        ready = asyncio.ensure_future(self.clients.prepare())
        try:
            await self.prewarm(orders)
        finally:
            await ready

    def _copilot_wanted(self) -> bool:
        return any("copilot" in order for order in self._orders)

    def _quic_likely(self) -> bool:
        """QUIC is forced, or an earlier run learned an HTTP/3 origin (otherwise aioquic is
        imported only if one is learned)."""
        protocol = self.settings.http.protocol
        if protocol == "http3":
            return True
        if protocol != "auto":
            return False
        return bool(read_json(data_dir() / "http3" / ALT_SVC_FILE).get("h3"))

    async def prewarm(self, orders: Iterable[Sequence[str]]) -> None:
        """Open the connection to the first usable remote provider of each order, so the first
        keystroke does not pay for DNS, TCP and TLS; one already open is left to the keep-warm
        loop (a second editor window opens nothing new)."""
        firsts = {next((n for n in self.chain.usable(order) if n != LOCAL), "") for order in orders}
        wanted = [name for name in firsts if name and name not in self._warm]
        self._warm.update(wanted)
        warm = [self.chain.providers[name].prewarm() for name in wanted]
        await asyncio.gather(*warm, return_exceptions=True)

    async def _keep_warm(self) -> None:
        """Keep the warmed providers' connections open while the editors are idle."""
        while True:
            await asyncio.sleep(keepalive.INTERVAL)
            for name in list(self._warm):
                provider = self.chain.providers.get(name)
                if provider is None or provider.unusable_reason() is not None:
                    continue
                try:
                    await provider.keep_warm()
                except Exception as exc:  # warmth is a nicety: never let it break anything
                    log.debug("keeping %s warm failed: %s", name, type(exc).__name__)

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        for provider in self.chain.providers.values():
            await provider.aclose()
        for auth in (self._github, self._google):
            if auth is not None:
                await auth.aclose()
        await self.clients.aclose()
        await asyncio.to_thread(self.ledger.close)  # the audit lines still queued are written

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("reaper-lsp"))


def _cache(settings: Settings) -> CompletionCache:
    return CompletionCache(
        ttl_seconds=settings.cache.ttl_seconds,
        max_entries=settings.cache.max_entries,
        clock=time.monotonic,
    )
