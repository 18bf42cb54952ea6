"""Anthropic Claude: streaming `/v1/messages` (named SSE events, no sentinel) with an API key,
or the same Messages API on Google Vertex AI (`:streamRawPredict`) with a Google sign-in."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Literal

from reaper_lsp.config import ClaudeSettings
from reaper_lsp.core.prompts import chat_fim_messages
from reaper_lsp.net.client import Clients, StreamContext, open_stream, prewarm
from reaper_lsp.net.metrics import ProviderMetrics
from reaper_lsp.net.streams import SSEDecoder
from reaper_lsp.providers.base import (
    AuthError,
    ChatRequest,
    CompletionRequest,
    NotConfigured,
    ProtocolError,
    StreamStats,
)
from reaper_lsp.providers.errors import error_from_stream_payload

if TYPE_CHECKING:
    from reaper_lsp.auth.google import GoogleAuth

ANTHROPIC_VERSION = "2023-06-01"
VERTEX_VERSION = "vertex-2023-10-16"
SSE = "text/event-stream"


class ClaudeProvider:
    name = "claude"

    def __init__(
        self,
        settings: ClaudeSettings,
        *,
        env: Mapping[str, str],
        clients: Clients,
        metrics: ProviderMetrics,
        google: GoogleAuth | None = None,
    ) -> None:
        self._settings = settings
        self._key = settings.resolve_api_key(env)
        self._clients = clients
        self._metrics = metrics
        self._google = google

    @property
    def vertex(self) -> bool:
        return self._settings.backend == "vertex"

    def unusable_reason(self) -> str | None:
        if self.vertex:
            if not self._settings.vertex_project:
                return "the Vertex AI backend needs providers.claude.vertex_project"
            if self._google is None or not self._google.signed_in():
                return "not signed in to Google (run `reaper-lsp login google`)"
            return None
        if not self._key:
            return f"no API key (set {self._settings.api_key_env} or providers.claude.api_key)"
        return None

    def model_for(self, kind: Literal["completion", "chat"]) -> str:
        return self._settings.chat_model if kind == "chat" else self._settings.model

    def _headers(self) -> dict[str, str]:
        reason = self.unusable_reason()
        if reason:
            raise NotConfigured(reason, provider=self.name)
        return {"x-api-key": self._key, "anthropic-version": ANTHROPIC_VERSION}

    async def stream_completion(
        self, request: CompletionRequest, stats: StreamStats
    ) -> AsyncIterator[str]:
        system, user = chat_fim_messages(request.context, multiline=request.multiline)
        body: dict[str, object] = {
            "model": self.model_for("completion"),
            "max_tokens": request.max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            "temperature": 0,
            "stream": True,
        }
        # Anthropic rejects whitespace-only stop sequences; single-line mode stops early instead.
        stops = [s for s in request.stop if s.strip()]
        if stops:
            body["stop_sequences"] = stops
        async for piece in self._stream(body, stats):
            yield piece

    async def stream_chat(self, request: ChatRequest, stats: StreamStats) -> AsyncIterator[str]:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        body: dict[str, object] = {
            "model": self.model_for("chat"),
            "max_tokens": request.max_tokens,
            "messages": [
                {"role": m.role, "content": m.content}
                for m in request.messages
                if m.role != "system"
            ],
            "stream": True,
        }
        if system:
            body["system"] = system
        async for piece in self._stream(body, stats):
            yield piece

    def vertex_base_url(self) -> str:
        s = self._settings
        if s.vertex_base_url:
            return s.vertex_base_url.rstrip("/")
        if s.vertex_region == "global":
            return "https://aiplatform.googleapis.com/v1"
        if s.vertex_region in ("us", "eu"):
            return f"https://aiplatform.{s.vertex_region}.rep.googleapis.com/v1"
        return f"https://{s.vertex_region}-aiplatform.googleapis.com/v1"

    async def _stream(self, body: dict[str, object], stats: StreamStats) -> AsyncIterator[str]:
        stats.model = str(body["model"])
        if self.vertex:
            async for piece in self._stream_vertex(body, stats):
                yield piece
            return
        url = self._settings.base_url.rstrip("/") + "/messages"
        async with open_stream(
            self._clients.get(self.name),
            url,
            provider=self.name,
            body=body,
            headers=self._headers(),
            metrics=self._metrics,
            accept=SSE,
        ) as stream:
            async for piece in read_message_events(stream, stats, self.name):
                yield piece

    async def _stream_vertex(
        self, body: dict[str, object], stats: StreamStats
    ) -> AsyncIterator[str]:
        """Vertex AI: the model moves into the URL, the version into the body, and the Google
        access token is the credential (refreshed once at once on a 401)."""
        from reaper_lsp.auth.google import GoogleSignInRequired

        reason = self.unusable_reason()
        if reason or self._google is None:
            raise NotConfigured(reason or "no Google sign-in", provider=self.name)
        s = self._settings
        payload = {k: v for k, v in body.items() if k != "model"}
        payload["anthropic_version"] = VERTEX_VERSION
        url = (
            f"{self.vertex_base_url()}/projects/{s.vertex_project}/locations/{s.vertex_region}"
            f"/publishers/anthropic/models/{body['model']}:streamRawPredict"
        )
        for attempt in (0, 1):
            try:
                token = await self._google.access_token()
            except GoogleSignInRequired as exc:
                raise NotConfigured(str(exc), provider=self.name) from None
            try:
                async with open_stream(
                    self._clients.get(self.name),
                    url,
                    provider=self.name,
                    body=payload,
                    headers={"authorization": f"Bearer {token}"},
                    metrics=self._metrics,
                    accept=SSE,
                ) as stream:
                    async for piece in read_message_events(stream, stats, self.name):
                        yield piece
                return
            except AuthError:
                self._google.invalidate()
                if attempt == 1:
                    raise

    async def prewarm(self) -> None:
        url = self.vertex_base_url() if self.vertex else self._settings.base_url
        await prewarm(self._clients.get(self.name), url, provider=self.name)

    async def aclose(self) -> None:
        return None


async def read_message_events(
    stream: StreamContext, stats: StreamStats, provider: str
) -> AsyncIterator[str]:
    """Decode Anthropic's named-event stream (also served by Vertex AI) into text pieces.

    Dispatch is by event name, as the official SDK does: unknown events are ignored so new
    event kinds do not break us; `message_stop` ends the message.
    """
    decoder = SSEDecoder()
    async for chunk in stream.chunks():
        for event in decoder.feed(chunk):
            if event.event == "ping":
                continue
            try:
                payload = json.loads(event.data)
            except ValueError:
                raise ProtocolError("stream event is not JSON", provider=provider) from None
            if not isinstance(payload, dict):
                raise ProtocolError("stream event is not a JSON object", provider=provider)
            kind = event.event if event.event != "message" else str(payload.get("type", ""))
            if kind == "error":
                raise error_from_stream_payload(provider, payload)
            if kind == "message_stop":
                return
            text = _apply_event(kind, payload, stats)
            if text:
                yield text
    raise ProtocolError("stream ended before message_stop", provider=provider)


def _apply_event(kind: str, payload: Mapping[str, object], stats: StreamStats) -> str:
    if kind == "content_block_delta":
        delta = payload.get("delta")
        if isinstance(delta, dict) and delta.get("type") == "text_delta":
            text = delta.get("text")
            return text if isinstance(text, str) else ""
    elif kind == "message_start":
        message = payload.get("message")
        if isinstance(message, dict):
            stats.model = str(message.get("model") or stats.model)
            _usage(message.get("usage"), stats)
    elif kind == "message_delta":
        delta = payload.get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
            stats.finish_reason = str(delta["stop_reason"])
        _usage(payload.get("usage"), stats)
    return ""


def _usage(usage: object, stats: StreamStats) -> None:
    if not isinstance(usage, dict):
        return
    if isinstance(usage.get("input_tokens"), int):
        stats.input_tokens = int(usage["input_tokens"])
    if isinstance(usage.get("output_tokens"), int):
        stats.output_tokens = int(usage["output_tokens"])
