"""GitHub Copilot: ghost text from `{proxy}/v1/engines/{engine}/completions` (native
fill-in-the-middle, always streamed) and chat from `{api}/chat/completions`, with the short-lived
Copilot token minted from the user's GitHub sign-in.

Copilot's status codes mean more than usual: 401/403 ask for a fresh token (re-minted once, at
once), 402 is the monthly quota (the user is told once and Copilot rests until it resets), 429
asks for a pause, and 466 says the client is too old.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from reaper_lsp import __version__
from reaper_lsp.core.prompts import fim_parts
from reaper_lsp.net.client import Clients
from reaper_lsp.net.metrics import ProviderMetrics
from reaper_lsp.providers.base import ChatRequest, CompletionRequest, Kind, Parts
from reaper_lsp.providers.errors import (
    AuthError,
    BadRequest,
    NotConfigured,
    ProviderError,
    QuotaExhausted,
    RateLimited,
)
from reaper_lsp.providers.http import (
    HTTPProvider,
    RefreshingBearer,
    chat_body,
    read_indexed_choices,
    temperature_for,
)
from reaper_lsp.settings import CopilotSettings

if TYPE_CHECKING:
    from reaper_lsp.auth.copilot_token import CopilotToken
    from reaper_lsp.auth.github import GitHubAuth

log = logging.getLogger(__name__)

Request = CompletionRequest | ChatRequest

DEFAULT_MODEL = "gpt-41-copilot"
"""The completion model (Copilot's URL calls it the "engine")."""
DEFAULT_CHAT_MODEL = "gpt-4.1"
QUOTA_REST = 3600.0
"""Seconds Copilot is skipped after a 402 (monthly quota) before it is asked again."""
RATE_LIMIT_REST = 10.0
"""Pause after a 429 that did not say how long (what the official client does)."""


def _next_indent(suffix: str) -> int:
    """Indentation of the first non-blank line after the cursor's line."""
    for line in suffix.split("\n")[1:]:
        if line.strip():
            return len(line) - len(line.lstrip(" \t"))
    return 0


class CopilotProvider(HTTPProvider):
    name = "copilot"

    def __init__(
        self,
        settings: CopilotSettings,
        *,
        auth: GitHubAuth,
        clients: Clients,
        metrics: ProviderMetrics,
    ) -> None:
        super().__init__(clients=clients, metrics=metrics)
        self._settings = settings
        self._auth = auth
        self._bearer = RefreshingBearer(self._token_text, auth.invalidate)

    def unusable_reason(self) -> str | None:
        if not self._auth.signed_in():
            if self._auth.store_problem:
                return self._auth.store_problem
            return "not signed in to GitHub (run `reaper-lsp login copilot` or reaper.signIn)"
        return None

    def model_for(self, kind: Kind) -> str:
        if kind == "chat":
            return DEFAULT_CHAT_MODEL
        return self._settings.model or DEFAULT_MODEL

    def _headers(self, intent: str, editor: str) -> dict[str, str]:
        s = self._settings
        return {
            "editor-version": s.editor_version or editor or f"reaper-lsp/{__version__}",
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
            message = f"Copilot: {exc}"
            raise NotConfigured(str(exc), user_message=message, provider=self.name) from None
        except CopilotUnavailable as exc:
            raise AuthError(str(exc), user_message=f"Copilot: {exc}", provider=self.name) from None

    async def _token_text(self, fresh: bool) -> str:
        return (await self._token(force=fresh)).token

    def explain(self, error: ProviderError) -> ProviderError:
        """Copilot's own status codes: 402 quota, 466 outdated client, 429 with a rest."""
        # A 429 about the quota is the monthly allowance, not a pace to slow down to.
        quota_429 = error.status == 429 and "quota" in error.message.lower()
        if error.status == 402 or quota_429 or isinstance(error, QuotaExhausted):
            message = "Copilot's monthly quota is used up; other providers answer until it resets"
            return QuotaExhausted(
                message, status=error.status, rest_for=QUOTA_REST, user_message=message,
                provider=self.name,
            )  # fmt: skip
        if error.status == 466:
            message = (
                "Copilot says this client is too old: update reaper-lsp, or set "
                "providers.copilot.editor_version / editor_plugin_version"
            )
            return BadRequest(
                message, status=466, rest_for=QUOTA_REST, user_message=message, provider=self.name
            )
        if isinstance(error, RateLimited):
            wait = error.retry_after if error.retry_after is not None else RATE_LIMIT_REST
            return RateLimited(
                error.message, status=error.status, retry_after=wait, rest_for=wait,
                provider=self.name,
            )  # fmt: skip
        return error

    async def _stream(
        self, path: str, body: dict[str, object], intent: str, request: Request
    ) -> AsyncIterator[str]:
        async for index, piece in self._stream_indexed(path, body, intent, request):
            if index == 0:
                yield piece

    async def _stream_indexed(
        self, path: str, body: dict[str, object], intent: str, request: Request
    ) -> AsyncIterator[tuple[int, str]]:
        token = await self._token()
        base = token.proxy_url if intent == "copilot-ghost" else token.api_url
        url = base.rstrip("/") + path
        headers = self._headers(intent, request.editor)
        opened = self.open(url, body, origin=request.origin, headers=headers, auth=self._bearer)
        async with opened as stream:
            async for found in read_indexed_choices(self, stream):
                yield found

    async def stream_completion(self, request: CompletionRequest) -> AsyncIterator[str]:
        async for index, piece in self.stream_alternatives(request):
            if index == 0:
                yield piece

    async def stream_alternatives(
        self, request: CompletionRequest
    ) -> AsyncIterator[tuple[int, str]]:
        """Ghost text, `request.n` choices at once (interleaved by index)."""
        ctx = request.context
        # Other files as `# Path:` comment sections ahead of the file's own, as GitHub's
        # language server writes its neighbouring tabs.
        prompt, suffix = fim_parts(ctx, request.snippets)
        body: dict[str, object] = {
            "prompt": prompt,
            "suffix": suffix,
            "max_tokens": request.max_tokens,
            "temperature": temperature_for(request.n),
            "top_p": 1,
            "n": request.n,
            "stop": list(request.stop),
            "stream": True,
            "extra": {
                "language": ctx.language,
                "next_indent": _next_indent(ctx.suffix),
                "trim_by_indentation": True,
                "prompt_tokens": len(prompt) // 4,
                "suffix_tokens": len(suffix) // 4,
            },
        }
        path = f"/v1/engines/{self.model_for('completion')}/completions"
        async for found in self._stream_indexed(path, body, "copilot-ghost", request):
            yield found

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        body = chat_body(self.model_for("chat"), request, n=1)
        chat = "/chat/completions"
        async for piece in self._stream(chat, body, "conversation-panel", request):
            yield piece

    async def prewarm(self) -> None:
        """Mint the Copilot token and open the connection to the proxy."""
        try:
            token = await self._token()
        except ProviderError as exc:
            log.info("prewarming copilot: %s", exc)
            return
        await self.warm(token.proxy_url)


def build(parts: Parts) -> CopilotProvider:
    return CopilotProvider(
        parts.settings.providers.copilot,
        auth=parts.github(),
        clients=parts.clients,
        metrics=parts.metrics.provider("copilot"),
    )
