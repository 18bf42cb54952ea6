"""Ollama: `/api/generate` with `suffix` for fill-in-the-middle and `/api/chat` for chat, both
streamed as NDJSON."""

from __future__ import annotations

from collections.abc import AsyncIterator

from reaper_lsp.config import OllamaSettings
from reaper_lsp.core.prompts import fim_parts
from reaper_lsp.net.client import Clients, StreamContext
from reaper_lsp.net.metrics import ProviderMetrics
from reaper_lsp.providers.base import ChatRequest, CompletionRequest, Kind
from reaper_lsp.providers.errors import (
    BadRequest,
    ProtocolError,
    ProviderError,
    Unreachable,
    error_from_stream_payload,
)
from reaper_lsp.providers.http import NDJSON, HTTPProvider


class OllamaProvider(HTTPProvider):
    name = "ollama"

    def __init__(
        self, settings: OllamaSettings, *, clients: Clients, metrics: ProviderMetrics
    ) -> None:
        super().__init__(clients=clients, metrics=metrics)
        self._settings = settings
        self._model = settings.model
        """The model of the latest request (named in error explanations)."""

    def unusable_reason(self) -> str | None:
        return None

    def model_for(self, kind: Kind) -> str:
        return self._settings.chat_model if kind == "chat" else self._settings.model

    async def stream_completion(self, request: CompletionRequest) -> AsyncIterator[str]:
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
        async for piece in self._stream("/api/generate", body, "response"):
            yield piece

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        body: dict[str, object] = {
            "model": self.model_for("chat"),
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "options": {"num_predict": request.max_tokens},
        }
        async for piece in self._stream("/api/chat", body, "message"):
            yield piece

    async def _stream(self, path: str, body: dict[str, object], field: str) -> AsyncIterator[str]:
        self._model = str(body["model"])
        url = self._settings.base_url.rstrip("/") + path
        async with self.open(url, body, accept=NDJSON) as stream:
            async for piece in self._read_lines(stream, field):
                yield piece

    def explain(self, error: ProviderError) -> ProviderError:
        """Say in plain words what the usual Ollama failures mean and what fixes them."""
        text = error.message.lower()
        model = self._model
        if isinstance(error, Unreachable):
            return Unreachable(
                f"Ollama is not running at {self._settings.base_url} (start it with "
                "`ollama serve`)",
                provider=self.name,
            )
        if "does not support insert" in text:
            return BadRequest(
                f"model {model!r} cannot fill in the middle (no 'insert' capability); set "
                "providers.ollama.model to a FIM model such as qwen2.5-coder:1.5b",
                status=error.status,
                provider=self.name,
            )
        if error.status == 404 and "not found" in text:
            return BadRequest(
                f"model {model!r} is not installed; run `ollama pull {model}`",
                status=404,
                provider=self.name,
            )
        return error

    async def _read_lines(self, stream: StreamContext, field: str) -> AsyncIterator[str]:
        async for payload in self.ndjson(stream):
            if "error" in payload:
                raise error_from_stream_payload(self.name, payload)
            value = payload.get(field)
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str) and value:
                yield value
            if payload.get("done"):
                return
        raise ProtocolError("stream ended before done", provider=self.name)

    async def prewarm(self) -> None:
        await self.warm(self._settings.base_url)
