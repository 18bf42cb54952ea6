"""Anthropic Claude: streaming `/v1/messages` (named SSE events, no sentinel) with an API key,
or the same Messages API on Google Vertex AI (`:streamRawPredict`) with a Google sign-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from reaper_lsp.core.prompts import chat_fim_messages
from reaper_lsp.net.client import StreamContext
from reaper_lsp.providers.base import ChatRequest, CompletionRequest, Kind, Origin, Parts
from reaper_lsp.providers.errors import NotConfigured, ProtocolError, error_from_stream_payload
from reaper_lsp.providers.exchange import note_text, note_tokens
from reaper_lsp.providers.http import HTTPProvider, KeyedProvider, RefreshingBearer
from reaper_lsp.settings import ClaudeSettings

if TYPE_CHECKING:
    from reaper_lsp.auth.google import GoogleAuth

ANTHROPIC_VERSION = "2023-06-01"
VERTEX_VERSION = "vertex-2023-10-16"


class ClaudeProvider(KeyedProvider[ClaudeSettings]):
    """Claude with an API key, or on Vertex AI with a Google sign-in (`google`)."""

    name = "claude"

    def __init__(self, settings: ClaudeSettings, *, google: GoogleAuth | None = None,
                 **parts: Any) -> None:  # fmt: skip
        base = settings.vertex_api() if settings.backend == "vertex" else settings.base_url
        super().__init__(settings, base_url=base, **parts)
        self._google = google
        self._bearer = (
            RefreshingBearer(self._google_token, google.invalidate) if google is not None else None
        )

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
        return self.missing_key()

    def model_for(self, kind: Kind) -> str:
        return self._settings.chat_model if kind == "chat" else self._settings.model

    async def stream_completion(self, request: CompletionRequest) -> AsyncIterator[str]:
        system, user = chat_fim_messages(
            request.context, multiline=request.multiline, snippets=request.snippets
        )
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
        async for piece in self._stream(body, request.origin):
            yield piece

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
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
        async for piece in self._stream(body, request.origin):
            yield piece

    async def _google_token(self, fresh: bool) -> str:
        from reaper_lsp.auth.google import GoogleSignInRequired

        assert self._google is not None
        try:
            return await self._google.access_token()
        except GoogleSignInRequired as exc:
            raise NotConfigured(str(exc), user_message=str(exc), provider=self.name) from None

    async def _stream(self, body: dict[str, object], origin: Origin) -> AsyncIterator[str]:
        reason = self.unusable_reason()
        if reason:
            raise NotConfigured(reason, provider=self.name)
        if self.vertex:
            # Vertex AI: the model moves into the URL, the version into the body, and the
            # Google access token is the credential (refreshed once on a 401).
            s = self._settings
            payload = {k: v for k, v in body.items() if k != "model"}
            payload["anthropic_version"] = VERTEX_VERSION
            url = (
                f"{self._settings.vertex_api()}/projects/{s.vertex_project}/locations/"
                f"{s.vertex_region}/publishers/anthropic/models/{body['model']}:streamRawPredict"
            )
            opened = self.open(url, payload, origin=origin, auth=self._bearer)
        else:
            url = self._settings.base_url.rstrip("/") + "/messages"
            headers = {"x-api-key": self._key, "anthropic-version": ANTHROPIC_VERSION}
            opened = self.open(url, body, origin=origin, headers=headers)
        async with opened as stream:
            async for piece in read_message_events(self, stream):
                yield piece


async def read_message_events(provider: HTTPProvider, stream: StreamContext) -> AsyncIterator[str]:
    """Decode Anthropic's named-event stream (also served by Vertex AI) into text pieces.

    Dispatch is by event name, as the official SDK does: unknown events are ignored so new
    event kinds do not break us; `message_stop` ends the message.
    """
    async for event in provider.sse(stream):
        if event.event == "ping":
            continue
        payload = provider.json_object(event.data)
        kind = event.event if event.event != "message" else str(payload.get("type", ""))
        if kind == "error":
            raise error_from_stream_payload(provider.name, payload)
        if kind == "message_stop":
            return
        if kind in ("message_start", "message_delta"):
            _note_usage(stream, payload)
        if kind == "content_block_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                text = delta.get("text")
                if isinstance(text, str) and text:
                    note_text(stream, text)
                    yield text
    raise ProtocolError("stream ended before message_stop", provider=provider.name)


def _note_usage(stream: StreamContext, payload: dict[str, object]) -> None:
    """`usage` of `message_start` (in `message`: the prompt, cache reads and writes included)
    and `message_delta` (the answer's running total)."""
    message = payload.get("message")
    usage = (message if isinstance(message, dict) else payload).get("usage")
    if not isinstance(usage, dict):
        return
    counts = [v for k, v in usage.items() if k.endswith("input_tokens") and isinstance(v, int)]
    note_tokens(stream, prompt=sum(counts) if counts else None, output=usage.get("output_tokens"))


def build(parts: Parts) -> ClaudeProvider:
    settings = parts.settings.providers.claude
    return ClaudeProvider(
        settings,
        env=parts.env,
        clients=parts.clients,
        metrics=parts.metrics.provider("claude"),
        google=parts.google() if settings.backend == "vertex" else None,
    )
