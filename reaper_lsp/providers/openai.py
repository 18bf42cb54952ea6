"""OpenAI and OpenAI-compatible servers: streaming `/chat/completions`, and legacy
`/completions` with `suffix` for native fill-in-the-middle (`fim = true`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from typing import Any

from reaper_lsp.core.budget import Prompt, PromptBudgets
from reaper_lsp.core.prompts import chat_fim_messages, fim_parts
from reaper_lsp.providers.base import ChatRequest, CompletionRequest, Kind, Parts
from reaper_lsp.providers.errors import (
    BadRequest,
    ContextTooLong,
    NotConfigured,
    ProviderError,
    ProviderUnavailable,
)
from reaper_lsp.providers.http import (
    KeyedProvider,
    chat_body,
    read_indexed_choices,
    stream_choices,
    temperature_for,
)
from reaper_lsp.settings import OpenAISettings

log = logging.getLogger(__name__)

MAX_STOPS = 4
"""OpenAI rejects more than four stop sequences."""
LLAMACPP_FIM = (
    "openai: the server at {url} is llama.cpp's llama-server, which ignores `suffix` on "
    "/completions, so `fim = true` is not fill-in-the-middle there. Use its own /infill: "
    'add "llamacpp" to completion.providers and set providers.llamacpp.base_url = "{root}"'
)


def _refuses_choices(error: ProviderError) -> bool:
    """Whether a request for several choices failed for asking for several."""
    return isinstance(error, BadRequest) or "choice" in error.message.lower()


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
        super().__init__(settings, base_url=settings.base_url, **parts)
        self.budgets = PromptBudgets(self.name)
        self._llamacpp: bool | None = None
        """Whether the server is llama-server (asked once, on warm-up or first FIM request)."""
        self._told_llamacpp = False
        self._usage: dict[str, object] = {"stream_options": {"include_usage": True}}
        """Asks for the usage (what a request cost, for budgets and the audit); dropped for a
        server that refuses the option (Azure OpenAI's older API versions)."""
        self._one_choice = False
        """The server refused `n` > 1: alternatives are asked for one at a time."""

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
        async for index, piece in self.stream_alternatives(request):
            if index == 0:
                yield piece

    async def stream_alternatives(
        self, request: CompletionRequest
    ) -> AsyncIterator[tuple[int, str]]:
        """(choice index, text piece) of `request.n` choices, interleaved as they arrive. A
        server that refuses several choices a request (llama-server: "Only one completion
        choice is allowed") is asked again at once for one, and from then on only for one."""
        if self._settings.fim and self._llamacpp is None:
            await self._probe()
        if self._settings.fim and self._llamacpp and not self._told_llamacpp:
            self._told_llamacpp = True
            raise self._llamacpp_fim()  # told once, not taken for a refusal of `n`
        n = 1 if self._one_choice else request.n
        started = False
        try:
            async for found in self._choices(replace(request, n=n)):
                started = True
                yield found
        except ProviderError as exc:
            if started or n == 1 or not _refuses_choices(exc):
                raise
            async for found in self._choices(replace(request, n=1)):
                if not self._one_choice:  # one choice works where several did not
                    self._one_choice = True
                    log.info("openai: %s takes one choice a request", self._settings.base_url)
                yield found

    async def _choices(self, request: CompletionRequest) -> AsyncIterator[tuple[int, str]]:
        async def send(prompt: Prompt) -> AsyncGenerator[tuple[int, str], None]:
            url, body = self._completion_body(request, prompt)
            opened = self.open(url, body, origin=request.origin, headers=self._headers())
            async with opened as stream:
                async for found in read_indexed_choices(self, stream):
                    yield found

        model = self.model_for("completion")
        prompt = Prompt(request.context, request.snippets)
        async for found in self.budgets.stream(model, prompt, send, ContextTooLong):
            yield found

    def _completion_body(
        self, request: CompletionRequest, prompt: Prompt
    ) -> tuple[str, dict[str, object]]:
        ctx = prompt.context
        body: dict[str, object] = {
            "model": self.model_for("completion"),
            "max_tokens": request.max_tokens,
            "temperature": temperature_for(request.n),
            "stream": True,
            **self._usage,
        }
        if request.n > 1:
            body["n"] = request.n
        if request.stop:
            body["stop"] = list(request.stop[:MAX_STOPS])
        if self._fim():
            body["prompt"], body["suffix"] = fim_parts(ctx, prompt.snippets)
            return self._url("/completions"), body
        system, user = chat_fim_messages(ctx, multiline=request.multiline, snippets=prompt.snippets)
        body["messages"] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]
        return self._url("/chat/completions"), body

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        body = chat_body(self.model_for("chat"), request, **self._usage)
        url = self._url("/chat/completions")
        return stream_choices(self, url, body, self._headers(), request.origin)

    def explain(self, error: ProviderError) -> ProviderError:
        if isinstance(error, BadRequest) and "stream_options" in error.message and self._usage:
            self._usage = {}  # asked again at once without it (the usage is then estimated)
            error.retryable = True
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
        headers = {"authorization": f"Bearer {self._key}"} if self._key else {}
        models = await self.get_json(self._url("/models"), headers)
        if models is None:
            return
        self._llamacpp = is_llamacpp(models)
        if self._llamacpp:
            log.info("the openai provider's server at %s is llama-server", self._settings.base_url)

    async def prewarm(self) -> None:
        await self._probe()


def build(parts: Parts) -> OpenAIProvider:
    provider = OpenAIProvider(
        parts.settings.providers.openai,
        env=parts.env,
        clients=parts.clients,
        metrics=parts.metrics.provider("openai"),
    )
    provider.budgets.notify = parts.tell
    return provider
