"""Ollama: `/api/generate` with `suffix` for fill-in-the-middle and `/api/chat` for chat, both
streamed as NDJSON."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Literal

from reaper_lsp.config import OllamaSettings
from reaper_lsp.core.prompts import fim_parts
from reaper_lsp.net.client import Clients, StreamContext, open_stream, prewarm
from reaper_lsp.net.metrics import ProviderMetrics
from reaper_lsp.net.streams import NDJSONDecoder
from reaper_lsp.providers.base import (
    BadRequest,
    ChatRequest,
    CompletionRequest,
    ProtocolError,
    ProviderError,
    StreamStats,
    Unreachable,
)
from reaper_lsp.providers.errors import error_from_stream_payload

NDJSON = "application/x-ndjson"


class OllamaProvider:
    name = "ollama"

    def __init__(self, settings: OllamaSettings, *, clients: Clients, metrics: ProviderMetrics):
        self._settings = settings
        self._clients = clients
        self._metrics = metrics

    def unusable_reason(self) -> str | None:
        return None

    def model_for(self, kind: Literal["completion", "chat"]) -> str:
        return self._settings.chat_model if kind == "chat" else self._settings.model

    async def stream_completion(
        self, request: CompletionRequest, stats: StreamStats
    ) -> AsyncIterator[str]:
        prompt, suffix = fim_parts(request.context)
        options: dict[str, object] = {"num_predict": request.max_tokens, "temperature": 0}
        if request.stop:
            options["stop"] = list(request.stop)
        body: dict[str, object] = {
            "model": self.model_for("completion"),
            "prompt": prompt,
            "suffix": suffix,
            "stream": True,
            "options": options,
        }
        async for piece in self._stream("/api/generate", body, stats, "response"):
            yield piece

    async def stream_chat(self, request: ChatRequest, stats: StreamStats) -> AsyncIterator[str]:
        body: dict[str, object] = {
            "model": self.model_for("chat"),
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "options": {"num_predict": request.max_tokens},
        }
        async for piece in self._stream("/api/chat", body, stats, "message"):
            yield piece

    async def _stream(
        self, path: str, body: dict[str, object], stats: StreamStats, field: str
    ) -> AsyncIterator[str]:
        model = str(body["model"])
        stats.model = model
        try:
            async with open_stream(
                self._clients.get(self.name),
                self._settings.base_url.rstrip("/") + path,
                provider=self.name,
                body=body,
                headers={},
                metrics=self._metrics,
                accept=NDJSON,
            ) as stream:
                async for piece in _read_lines(stream, stats, field, self.name):
                    yield piece
        except ProviderError as exc:
            raise self._explain(exc, model) from None

    def _explain(self, exc: ProviderError, model: str) -> ProviderError:
        """Say in plain words what the usual Ollama failures mean and what fixes them."""
        text = exc.message.lower()
        if isinstance(exc, Unreachable):
            return Unreachable(
                f"Ollama is not running at {self._settings.base_url} (start it with "
                "`ollama serve`)",
                provider=self.name,
            )
        if "does not support insert" in text:
            return BadRequest(
                f"model {model!r} cannot fill in the middle (no 'insert' capability); set "
                "providers.ollama.model to a FIM model such as qwen2.5-coder:1.5b",
                status=exc.status,
                provider=self.name,
            )
        if exc.status == 404 and "not found" in text:
            return BadRequest(
                f"model {model!r} is not installed; run `ollama pull {model}`",
                status=404,
                provider=self.name,
            )
        return exc

    async def prewarm(self) -> None:
        await prewarm(self._clients.get(self.name), self._settings.base_url, provider=self.name)

    async def aclose(self) -> None:
        return None


async def _read_lines(
    stream: StreamContext, stats: StreamStats, field: str, provider: str
) -> AsyncIterator[str]:
    decoder = NDJSONDecoder()

    def text_of(line: str) -> tuple[str, bool]:
        try:
            payload = json.loads(line)
        except ValueError:
            raise ProtocolError("stream line is not JSON", provider=provider) from None
        if not isinstance(payload, dict):
            raise ProtocolError("stream line is not a JSON object", provider=provider)
        if "error" in payload:
            raise error_from_stream_payload(provider, payload)
        value = payload.get(field)
        if isinstance(value, dict):
            value = value.get("content")
        done = bool(payload.get("done"))
        if done:
            stats.finish_reason = str(payload.get("done_reason") or "stop")
            stats.input_tokens = int(payload.get("prompt_eval_count") or 0)
            stats.output_tokens = int(payload.get("eval_count") or 0)
        return (value if isinstance(value, str) else ""), done

    async for chunk in stream.chunks():
        for line in decoder.feed(chunk):
            text, done = text_of(line)
            if text:
                yield text
            if done:
                return
    for line in decoder.close():
        text, done = text_of(line)
        if text:
            yield text
        if done:
            return
    raise ProtocolError("stream ended before done", provider=provider)
