"""OpenAI and OpenAI-compatible servers: streaming `/chat/completions`, and legacy
`/completions` with `suffix` for native fill-in-the-middle (`fim = true`)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import httpx

from reaper_lsp.config import OpenAISettings
from reaper_lsp.core.budget import PromptBudgets
from reaper_lsp.core.prompts import chat_fim_messages, fim_parts
from reaper_lsp.core.types import CompletionContext
from reaper_lsp.net.client import StreamContext
from reaper_lsp.net.errors import NetError
from reaper_lsp.providers.base import ChatRequest, CompletionRequest, Kind
from reaper_lsp.providers.errors import (
    BadRequest,
    ContextTooLong,
    NotConfigured,
    ProtocolError,
    ProviderError,
    ProviderUnavailable,
    error_from_stream_payload,
)
from reaper_lsp.providers.http import SSE, HTTPProvider, KeyedProvider, chat_body

log = logging.getLogger(__name__)

MAX_STOPS = 4
"""OpenAI rejects more than four stop sequences."""
LLAMACPP_FIM = (
    "openai: the server at {url} is llama.cpp's llama-server, which ignores `suffix` on "
    "/completions, so `fim = true` is not fill-in-the-middle there. Use its own /infill: "
    'add "llamacpp" to completion.providers and set providers.llamacpp.base_url = "{root}"'
)


def is_llamacpp(models: object) -> bool:
    """Whether a `GET /v1/models` answer comes from llama-server (`owned_by: "llamacpp"`)."""
    if not isinstance(models, dict) or not isinstance(models.get("data"), list):
        return False
    return any(
        isinstance(entry, dict) and entry.get("owned_by") == "llamacpp" for entry in models["data"]
    )


class OpenAIProvider(KeyedProvider[OpenAISettings]):
    name = "openai"

    def __init__(self, settings: OpenAISettings, **parts: Any) -> None:
        """`parts`: `env`, `clients`, `metrics`, as every API-key provider takes them."""
        super().__init__(settings, **parts)
        self.budgets = PromptBudgets(self.name)
        self._llamacpp: bool | None = None
        """Whether the server is llama-server (asked once, on warm-up or first FIM request)."""
        self._told_llamacpp = False

    def unusable_reason(self) -> str | None:
        return self.missing_key()

    def model_for(self, kind: Kind) -> str:
        if kind == "chat":
            return self._settings.chat_model
        return self._settings.fim_model if self._fim() else self._settings.model

    def _headers(self) -> dict[str, str]:
        if not self._key:
            raise NotConfigured(self.unusable_reason() or "", provider=self.name)
        return {"authorization": f"Bearer {self._key}"}

    def _url(self, path: str) -> str:
        return self._settings.base_url.rstrip("/") + path

    async def stream_completion(self, request: CompletionRequest) -> AsyncIterator[str]:
        if self._settings.fim and self._llamacpp is None:
            await self._probe()
        if self._settings.fim and self._llamacpp and not self._told_llamacpp:
            self._told_llamacpp = True
            raise self._llamacpp_fim()

        async def send(ctx: CompletionContext) -> AsyncGenerator[str, None]:
            async for piece in self._complete(request, ctx):
                yield piece

        model = self.model_for("completion")
        async for piece in self.budgets.stream(model, request.context, send, ContextTooLong):
            yield piece

    async def _complete(
        self, request: CompletionRequest, ctx: CompletionContext
    ) -> AsyncIterator[str]:
        body: dict[str, object] = {
            "model": self.model_for("completion"),
            "max_tokens": request.max_tokens,
            "temperature": 0,
            "stream": True,
        }
        if request.stop:
            body["stop"] = list(request.stop[:MAX_STOPS])
        if self._fim():
            body["prompt"], body["suffix"] = fim_parts(ctx)
            path = "/completions"
        else:
            system, user = chat_fim_messages(ctx, multiline=request.multiline)
            body["messages"] = [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ]
            path = "/chat/completions"
        async with self.open(self._url(path), body, headers=self._headers()) as stream:
            async for piece in read_choices(self, stream):
                yield piece

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        body = chat_body(self.model_for("chat"), request)
        return stream_choices(self, self._url("/chat/completions"), body, self._headers())

    def explain(self, error: ProviderError) -> ProviderError:
        if isinstance(error, ProviderUnavailable) and "litellm retried" in error.message.lower():
            # The LiteLLM proxy has retried its upstream already (`num_retries`): trying again
            # would spend the user's wait on the same failure instead of showing its cause.
            error.retryable = False
        return super().explain(error)

    def _fim(self) -> bool:
        """FIM through `/completions`, unless the server is llama-server, which ignores `suffix`
        there (then the chat prompt, which it does follow)."""
        return self._settings.fim and not self._llamacpp

    def _llamacpp_fim(self) -> BadRequest:
        """The one failed attempt that tells the user `fim = true` cannot work here."""
        url = self._settings.base_url
        root = url.rstrip("/").removesuffix("/v1")
        return BadRequest(
            "llama-server ignores suffix on /completions: use the llamacpp provider",
            user_message=LLAMACPP_FIM.format(url=url, root=root),
            provider=self.name,
        )

    async def _probe(self) -> None:
        """`GET {base}/models`: opens the connection (every OpenAI-compatible server answers
        it, LiteLLM included) and tells llama-server apart by its `owned_by`."""
        url = self._url("/models")
        try:
            client = self._clients.get(self.name)
            headers = {"authorization": f"Bearer {self._key}"} if self._key else {}
            response = await client.get(url, headers=headers)
        except (NetError, httpx.HTTPError) as exc:
            log.info("prewarming openai failed: %s", type(exc).__name__)
            return
        log.debug("GET %s -> %s (warm-up)", url, response.status_code)
        if response.status_code != 200:
            return
        try:
            self._llamacpp = is_llamacpp(json.loads(response.content))
        except ValueError:
            self._llamacpp = False
        if self._llamacpp:
            log.info("the openai provider's server at %s is llama-server", self._settings.base_url)

    async def prewarm(self) -> None:
        await self._probe()


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


async def stream_choices(
    provider: HTTPProvider, url: str, body: dict[str, object], headers: dict[str, str]
) -> AsyncIterator[str]:
    """POST an OpenAI-style streamed request and yield its text (chat on every OpenAI-style
    server: OpenAI, llama-server, LiteLLM, Copilot)."""
    async with provider.open(url, body, headers=headers) as stream:
        async for piece in read_choices(provider, stream):
            yield piece


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
