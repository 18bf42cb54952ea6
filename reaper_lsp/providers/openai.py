"""OpenAI and OpenAI-compatible servers: streaming `/chat/completions`, and legacy
`/completions` with `suffix` for native fill-in-the-middle (`fim = true`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from reaper_lsp.config import OpenAISettings
from reaper_lsp.core.prompts import chat_fim_messages, fim_parts
from reaper_lsp.net.client import StreamContext
from reaper_lsp.providers.base import ChatRequest, CompletionRequest, Kind
from reaper_lsp.providers.errors import NotConfigured, ProtocolError, error_from_stream_payload
from reaper_lsp.providers.http import SSE, HTTPProvider, KeyedProvider, chat_body

MAX_STOPS = 4
"""OpenAI rejects more than four stop sequences."""


class OpenAIProvider(KeyedProvider[OpenAISettings]):
    name = "openai"

    def unusable_reason(self) -> str | None:
        return self.missing_key()

    def model_for(self, kind: Kind) -> str:
        if kind == "chat":
            return self._settings.chat_model
        return self._settings.fim_model if self._settings.fim else self._settings.model

    def _headers(self) -> dict[str, str]:
        if not self._key:
            raise NotConfigured(self.unusable_reason() or "", provider=self.name)
        return {"authorization": f"Bearer {self._key}"}

    def _url(self, path: str) -> str:
        return self._settings.base_url.rstrip("/") + path

    async def stream_completion(self, request: CompletionRequest) -> AsyncIterator[str]:
        body: dict[str, object] = {
            "model": self.model_for("completion"),
            "max_tokens": request.max_tokens,
            "temperature": 0,
            "stream": True,
        }
        if request.stop:
            body["stop"] = list(request.stop[:MAX_STOPS])
        if self._settings.fim:
            body["prompt"], body["suffix"] = fim_parts(request.context)
            path = "/completions"
        else:
            system, user = chat_fim_messages(request.context, multiline=request.multiline)
            body["messages"] = [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ]
            path = "/chat/completions"
        async with self.open(self._url(path), body, headers=self._headers()) as stream:
            async for piece in read_choices(self, stream):
                yield piece

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        body = chat_body(self.model_for("chat"), request)
        url = self._url("/chat/completions")
        async with self.open(url, body, headers=self._headers()) as stream:
            async for piece in read_choices(self, stream):
                yield piece

    async def prewarm(self) -> None:
        await self.warm(self._settings.base_url)


def choice_text(choice: Mapping[str, object]) -> str:
    """Text of one streamed choice: chat `delta.content` or completions `text`."""
    for key in ("delta", "message"):
        part = choice.get(key)
        if isinstance(part, dict):
            content = part.get("content")
            return content if isinstance(content, str) else ""
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def _chunk_text(provider: HTTPProvider, payload: dict[str, object]) -> str:
    if payload.get("error") is not None:
        raise error_from_stream_payload(provider.name, payload)
    choices = payload.get("choices")
    if not isinstance(choices, list):
        return ""
    # n > 1 interleaves choices by index; only the first one is used.
    return "".join(
        choice_text(choice)
        for choice in choices
        if isinstance(choice, dict) and choice.get("index", 0) == 0
    )


async def read_choices(provider: HTTPProvider, stream: StreamContext) -> AsyncIterator[str]:
    """Decode a data-only SSE stream (OpenAI, Copilot, compatible servers) into text pieces
    until `[DONE]`. A server that ignored `stream: true` and answered one JSON object is
    accepted too."""
    if SSE not in stream.content_type:
        raw = b"".join([chunk async for chunk in stream.chunks()])
        text = _chunk_text(provider, provider.json_object(raw))
        if text:
            yield text
        return
    async for event in provider.sse(stream):
        data = event.data.strip()
        if data.startswith("[DONE]"):
            return
        text = _chunk_text(provider, provider.json_object(data))
        if text:
            yield text
    raise ProtocolError("stream ended without [DONE]", provider=provider.name)
