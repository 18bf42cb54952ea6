"""GitHub Copilot: ghost text from `{proxy}/v1/engines/{engine}/completions` (native
fill-in-the-middle, always streamed) and chat from `{api}/chat/completions`, with the short-lived
Copilot token minted from the user's GitHub sign-in.

Copilot's status codes mean more than usual: 401/403 ask for a fresh token (re-minted once, at
once), 402 is the monthly quota (the user is told once and Copilot rests until it resets), 429
asks for a pause, and 466 says the client is too old.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Literal

from reaper_lsp import __version__
from reaper_lsp.config import CopilotSettings
from reaper_lsp.core.prompts import path_header
from reaper_lsp.net.client import Clients, open_stream, prewarm
from reaper_lsp.net.metrics import ProviderMetrics
from reaper_lsp.providers.base import (
    AuthError,
    BadRequest,
    ChatRequest,
    CompletionRequest,
    NotConfigured,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    StreamStats,
)
from reaper_lsp.providers.openai import read_choices

if TYPE_CHECKING:
    from reaper_lsp.auth.github import CopilotToken, GitHubAuth

log = logging.getLogger(__name__)

SSE = "text/event-stream"
DEFAULT_ENGINE = "gpt-41-copilot"
DEFAULT_CHAT_MODEL = "gpt-4.1"
QUOTA_REST = 3600.0
"""Seconds Copilot is skipped after a 402 (monthly quota) before it is asked again."""
RATE_LIMIT_REST = 10.0
"""Pause after a 429 that did not say how long (what the official client does)."""

_STOPS = ("\n\n\n", "\n```")
_LANGUAGE_STOPS = {
    "python": ("\ndef ", "\nclass ", "\nif ", "\n\n#"),
    "markdown": ("\n\n\n",),
}

Notify = Callable[[str], None]


def _next_indent(suffix: str) -> int:
    """Indentation of the first non-blank line after the cursor's line."""
    for line in suffix.split("\n")[1:]:
        if line.strip():
            return len(line) - len(line.lstrip(" \t"))
    return 0


class CopilotProvider:
    name = "copilot"

    def __init__(
        self,
        settings: CopilotSettings,
        *,
        auth: GitHubAuth,
        clients: Clients,
        metrics: ProviderMetrics,
        editor: str = "",
        notify: Notify | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._auth = auth
        self._clients = clients
        self._metrics = metrics
        self._editor = editor
        self._notify = notify
        self._clock = clock
        self._resting_until = 0.0
        self._rest_reason = ""
        self._told: set[str] = set()

    def unusable_reason(self) -> str | None:
        if self._clock() < self._resting_until:
            return self._rest_reason
        if not self._auth.signed_in():
            if self._auth.store_problem:
                return self._auth.store_problem
            return "not signed in to GitHub (run `reaper-lsp login copilot` or reaper.signIn)"
        return None

    def model_for(self, kind: Literal["completion", "chat"]) -> str:
        if kind == "chat":
            return DEFAULT_CHAT_MODEL
        return self._settings.model or DEFAULT_ENGINE

    def _headers(self, token: CopilotToken, intent: str) -> dict[str, str]:
        s = self._settings
        return {
            "authorization": f"Bearer {token.token}",
            "editor-version": s.editor_version or self._editor or f"reaper-lsp/{__version__}",
            "editor-plugin-version": s.editor_plugin_version or f"reaper-lsp/{__version__}",
            "copilot-integration-id": s.integration_id,
            "openai-intent": intent,
            "x-request-id": str(uuid.uuid4()),
            "user-agent": s.user_agent or f"reaper-lsp/{__version__}",
        }

    async def _token(self, *, force: bool = False) -> CopilotToken:
        from reaper_lsp.auth.github import CopilotUnavailable, SignInRequired

        try:
            return await self._auth.copilot_token(force=force)
        except SignInRequired as exc:
            self._tell_once("signed-out", f"Copilot: {exc}")
            raise NotConfigured(str(exc), provider=self.name) from None
        except CopilotUnavailable as exc:
            raise AuthError(str(exc), provider=self.name) from None

    def _tell_once(self, key: str, message: str) -> None:
        if key not in self._told:
            self._told.add(key)
            if self._notify is not None:
                self._notify(message)

    def _rest(self, seconds: float, reason: str) -> None:
        self._resting_until = max(self._resting_until, self._clock() + seconds)
        self._rest_reason = reason

    async def _stream(
        self,
        url_of: Callable[[CopilotToken], str],
        body: dict[str, object],
        intent: str,
        stats: StreamStats,
    ) -> AsyncIterator[str]:
        """POST and stream choices; a 401/403 re-mints the token and tries once more."""
        for attempt in (0, 1):
            token = await self._token(force=attempt == 1)
            try:
                async with open_stream(
                    self._clients.get(self.name),
                    url_of(token),
                    provider=self.name,
                    body=body,
                    headers=self._headers(token, intent),
                    metrics=self._metrics,
                    accept=SSE,
                ) as stream:
                    async for piece in read_choices(stream, stats, self.name):
                        yield piece
                return
            except AuthError:
                self._auth.invalidate()
                if attempt == 1:
                    raise
            except ProviderError as exc:
                raise self._translate(exc) from None

    def _translate(self, exc: ProviderError) -> ProviderError:
        if exc.status == 402 or isinstance(exc, QuotaExhausted):
            message = "Copilot's monthly quota is used up; other providers answer until it resets"
            self._rest(QUOTA_REST, message)
            self._tell_once("quota", message)
            return QuotaExhausted(message, status=exc.status, provider=self.name)
        if exc.status == 466:
            message = (
                "Copilot says this client is too old: update reaper-lsp, or set "
                "providers.copilot.editor_version / editor_plugin_version"
            )
            self._rest(QUOTA_REST, message)
            self._tell_once("outdated", message)
            return BadRequest(message, status=466, provider=self.name)
        if isinstance(exc, RateLimited):
            wait = exc.retry_after if exc.retry_after is not None else RATE_LIMIT_REST
            self._rest(wait, f"rate limited by Copilot for {wait:.0f}s")
            return RateLimited(exc.message, status=exc.status, retry_after=wait, provider=self.name)
        return exc

    async def stream_completion(
        self, request: CompletionRequest, stats: StreamStats
    ) -> AsyncIterator[str]:
        ctx = request.context
        prompt = path_header(ctx) + ctx.prefix
        stops = list(_STOPS + _LANGUAGE_STOPS.get(ctx.language, ()))
        if not request.multiline:
            stops.insert(0, "\n")
        engine = self.model_for("completion")
        body: dict[str, object] = {
            "prompt": prompt,
            "suffix": ctx.suffix,
            "max_tokens": request.max_tokens,
            "temperature": 0,
            "top_p": 1,
            "n": 1,
            "stop": stops,
            "stream": True,
            "extra": {
                "language": ctx.language,
                "next_indent": _next_indent(ctx.suffix),
                "trim_by_indentation": True,
                "prompt_tokens": len(prompt) // 4,
                "suffix_tokens": len(ctx.suffix) // 4,
            },
        }
        stats.model = engine

        def url(token: CopilotToken) -> str:
            return f"{token.proxy_url.rstrip('/')}/v1/engines/{engine}/completions"

        async for piece in self._stream(url, body, "copilot-ghost", stats):
            yield piece

    async def stream_chat(self, request: ChatRequest, stats: StreamStats) -> AsyncIterator[str]:
        body: dict[str, object] = {
            "model": self.model_for("chat"),
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "n": 1,
            "stream": True,
        }
        stats.model = str(body["model"])

        def url(token: CopilotToken) -> str:
            return f"{token.api_url.rstrip('/')}/chat/completions"

        async for piece in self._stream(url, body, "conversation-panel", stats):
            yield piece

    async def prewarm(self) -> None:
        """Mint the Copilot token and open the connection to the proxy."""
        try:
            token = await self._token()
        except ProviderError as exc:
            log.info("prewarming copilot: %s", exc)
            return
        await prewarm(self._clients.get(self.name), token.proxy_url, provider=self.name)

    async def aclose(self) -> None:
        return None
