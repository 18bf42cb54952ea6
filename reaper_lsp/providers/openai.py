"""OpenAI and OpenAI-compatible servers: streaming `/chat/completions`, and legacy
`/completions` with `suffix` for native fill-in-the-middle (`fim = true`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Literal

from reaper_lsp.config import OpenAISettings
from reaper_lsp.core.prompts import chat_fim_messages, fim_parts
from reaper_lsp.net.client import Clients, StreamContext, open_stream, prewarm
from reaper_lsp.net.metrics import ProviderMetrics
from reaper_lsp.net.streams import SSEDecoder
from reaper_lsp.providers.base import (
    ChatRequest,
    CompletionRequest,
    NotConfigured,
    ProtocolError,
    StreamStats,
)
from reaper_lsp.providers.errors import error_from_stream_payload

SSE = "text/event-stream"


class OpenAIProvider:
    name = "openai"

    def __init__(
        self,
        settings: OpenAISettings,
        *,
        env: Mapping[str, str],
        clients: Clients,
        metrics: ProviderMetrics,
    ) -> None:
        self._settings = settings
        self._key = settings.resolve_api_key(env)
        self._clients = clients
        self._metrics = metrics

    def unusable_reason(self) -> str | None:
        if not self._key:
            return f"no API key (set {self._settings.api_key_env} or providers.openai.api_key)"
        return None

    def model_for(self, kind: Literal["completion", "chat"]) -> str:
        if kind == "chat":
            return self._settings.chat_model
        return self._settings.fim_model if self._settings.fim else self._settings.model

    def _headers(self) -> dict[str, str]:
        if not self._key:
            raise NotConfigured(self.unusable_reason() or "", provider=self.name)
        return {"authorization": f"Bearer {self._key}"}

    def _url(self, path: str) -> str:
        return self._settings.base_url.rstrip("/") + path

    async def stream_completion(
        self, request: CompletionRequest, stats: StreamStats
    ) -> AsyncIterator[str]:
        if self._settings.fim:
            prompt, suffix = fim_parts(request.context)
            body: dict[str, object] = {
                "model": self.model_for("completion"),
                "prompt": prompt,
                "suffix": suffix,
                "max_tokens": request.max_tokens,
                "temperature": 0,
                "stream": True,
            }
            if request.stop:
                body["stop"] = list(request.stop[:4])
            path = "/completions"
        else:
            system, user = chat_fim_messages(request.context, multiline=request.multiline)
            body = {
                "model": self.model_for("completion"),
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                "max_tokens": request.max_tokens,
                "temperature": 0,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            path = "/chat/completions"
        stats.model = str(body["model"])
        async with open_stream(
            self._clients.get(self.name),
            self._url(path),
            provider=self.name,
            body=body,
            headers=self._headers(),
            metrics=self._metrics,
            accept=SSE,
        ) as stream:
            async for piece in read_choices(stream, stats, self.name):
                yield piece

    async def stream_chat(self, request: ChatRequest, stats: StreamStats) -> AsyncIterator[str]:
        body: dict[str, object] = {
            "model": self.model_for("chat"),
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        stats.model = str(body["model"])
        async with open_stream(
            self._clients.get(self.name),
            self._url("/chat/completions"),
            provider=self.name,
            body=body,
            headers=self._headers(),
            metrics=self._metrics,
            accept=SSE,
        ) as stream:
            async for piece in read_choices(stream, stats, self.name):
                yield piece

    async def prewarm(self) -> None:
        await prewarm(self._clients.get(self.name), self._settings.base_url, provider=self.name)

    async def aclose(self) -> None:
        return None


def choice_text(choice: Mapping[str, object]) -> str:
    """Text of one streamed choice: chat `delta.content` or completions `text`."""
    delta = choice.get("delta")
    if isinstance(delta, dict):
        content = delta.get("content")
        return content if isinstance(content, str) else ""
    message = choice.get("message")
    if isinstance(message, dict):
        content = message.get("content")
        return content if isinstance(content, str) else ""
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def _apply_chunk(payload: object, stats: StreamStats, provider: str) -> str:
    if not isinstance(payload, dict):
        raise ProtocolError("stream event is not a JSON object", provider=provider)
    if payload.get("error") is not None:
        raise error_from_stream_payload(provider, payload)
    usage = payload.get("usage")
    if isinstance(usage, dict):
        stats.input_tokens = int(usage.get("prompt_tokens") or 0)
        stats.output_tokens = int(usage.get("completion_tokens") or 0)
    choices = payload.get("choices")
    if not isinstance(choices, list):
        return ""
    text = ""
    for choice in choices:
        # n > 1 interleaves choices by index; only the first one is used.
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            text += choice_text(choice)
            reason = choice.get("finish_reason")
            if isinstance(reason, str):
                stats.finish_reason = reason
    return text


async def read_choices(
    stream: StreamContext, stats: StreamStats, provider: str
) -> AsyncIterator[str]:
    """Decode a data-only SSE stream (OpenAI, Copilot) into text pieces until `[DONE]`.

    A server that ignored `stream: true` and answered one JSON object is accepted too.
    """
    if "text/event-stream" not in stream.response.headers.get("content-type", ""):
        raw = b"".join([chunk async for chunk in stream.chunks()])
        try:
            payload = json.loads(raw)
        except ValueError:
            raise ProtocolError("response is neither SSE nor JSON", provider=provider) from None
        text = _apply_chunk(payload, stats, provider)
        if text:
            yield text
        return
    decoder = SSEDecoder()
    async for chunk in stream.chunks():
        for event in decoder.feed(chunk):
            data = event.data.strip()
            if data.startswith("[DONE]"):
                return
            try:
                payload = json.loads(data)
            except ValueError:
                raise ProtocolError("stream event is not JSON", provider=provider) from None
            text = _apply_chunk(payload, stats, provider)
            if text:
                yield text
    decoder.close()
    raise ProtocolError("stream ended without [DONE]", provider=provider)
