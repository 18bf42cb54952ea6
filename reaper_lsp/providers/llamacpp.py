"""llama.cpp's `llama-server`: fill-in-the-middle through its own `/infill` endpoint (prefix,
suffix, and the request's snippets of other files as `input_extra`), chat through its
OpenAI-compatible `/v1/chat/completions`.

Its `/v1/completions` accepts `suffix` and ignores it, so the `openai` provider cannot do FIM
against it; this provider is the way to use a local llama-server for completions.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping

from reaper_lsp.core.budget import Prompt, PromptBudgets
from reaper_lsp.net.client import Clients, StreamContext
from reaper_lsp.net.metrics import ProviderMetrics
from reaper_lsp.providers import errors
from reaper_lsp.providers.base import ChatRequest, CompletionRequest, Kind, Parts
from reaper_lsp.providers.errors import BadRequest, ProviderError, Unreachable
from reaper_lsp.providers.exchange import note_text, note_tokens
from reaper_lsp.providers.http import SSE, KeyedProvider, chat_body, stream_choices
from reaper_lsp.settings import LlamaCppSettings

MAX_STOPS = 16
"""llama-server takes any number of stop strings; more than this is a mistake upstream."""
NO_FIM_REST = 600.0
"""Seconds to skip a server whose model has no FIM tokens (it will not grow them)."""


class LlamaCppProvider(KeyedProvider[LlamaCppSettings]):
    name = "llamacpp"

    def __init__(
        self,
        settings: LlamaCppSettings,
        *,
        env: Mapping[str, str],
        clients: Clients,
        metrics: ProviderMetrics,
    ) -> None:
        super().__init__(
            settings, env=env, clients=clients, metrics=metrics, base_url=settings.base_url
        )
        self.budgets = PromptBudgets(self.name)

    def unusable_reason(self) -> str | None:
        return None  # llama-server needs a key only when started with --api-key

    def model_for(self, kind: Kind) -> str:
        model = self._settings.chat_model if kind == "chat" else ""
        return model or self._settings.model or "llama-server"

    def _url(self, path: str) -> str:
        return self._settings.base_url.rstrip("/") + path

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._key}"} if self._key else {}

    def infill_body(self, request: CompletionRequest, prompt: Prompt) -> dict[str, object]:
        """The `/infill` body: llama-server lays `input_extra` out in the model's own
        repository-level format (`<|file_sep|>` for Qwen2.5-Coder) ahead of the prefix."""
        ctx = prompt.context
        body: dict[str, object] = {
            "input_prefix": ctx.prefix,
            "input_suffix": ctx.suffix,
            "input_extra": [{"filename": s.filename, "text": s.text} for s in prompt.snippets],
            "prompt": "",
            "n_predict": request.max_tokens,
            "stop": list(request.stop[:MAX_STOPS]),
            "temperature": 0,
            "cache_prompt": True,  # the prefix is mostly the same keystroke after keystroke
            "stream": True,
        }
        if self._settings.model:
            body["model"] = self._settings.model
        return body

    async def stream_completion(self, request: CompletionRequest) -> AsyncIterator[str]:
        async def send(prompt: Prompt) -> AsyncGenerator[str, None]:
            body = self.infill_body(request, prompt)
            url = self._url("/infill")
            opened = self.open(url, body, origin=request.origin, headers=self._headers())
            async with opened as stream:
                async for piece in self._read_infill(stream):
                    yield piece

        model = self.model_for("completion")
        prompt = Prompt(request.context, request.snippets)
        async for piece in self.budgets.stream(model, prompt, send, errors.ContextTooLong):
            yield piece

    async def _read_infill(self, stream: StreamContext) -> AsyncIterator[str]:
        """llama-server's own stream: `data: {"content": …, "stop": false}` per token, then one
        with `"stop": true`; no `[DONE]`. An answer to `stream: false` is one JSON object."""
        if SSE not in stream.content_type:
            raw = b"".join([chunk async for chunk in stream.chunks()])
            payload = self.json_object(raw)
            text = self._content(stream, payload)
            if text:
                yield text
            return
        async for event in self.sse(stream):
            data = event.data.strip()
            if not data:
                continue
            payload = self.json_object(data)
            text = self._content(stream, payload)
            if text:
                yield text
            if payload.get("stop") is True:
                return
        raise errors.ProtocolError("stream ended before stop", provider=self.name)

    def _content(self, stream: StreamContext, payload: dict[str, object]) -> str:
        if payload.get("error") is not None:
            raise errors.error_from_stream_payload(self.name, payload)
        # Running totals on every event; `timings` (the last event) when they are missing.
        timings = payload.get("timings")
        spent = timings if isinstance(timings, dict) else {}
        note_tokens(
            stream,
            prompt=payload.get("tokens_evaluated", spent.get("prompt_n")),
            output=payload.get("tokens_predicted", spent.get("predicted_n")),
        )
        content = payload.get("content")
        text = content if isinstance(content, str) else ""
        note_text(stream, text)
        return text

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        body = chat_body(self.model_for("chat"), request, stream_options={"include_usage": True})
        url = self._url("/v1/chat/completions")
        return stream_choices(self, url, body, self._headers(), request.origin)

    def explain(self, error: ProviderError) -> ProviderError:
        """What llama-server's failures mean and what fixes them."""
        if isinstance(error, Unreachable):
            return Unreachable(
                f"llama-server is not running at {self._settings.base_url} (start it with "
                "`llama-server -m <model.gguf> --port <port>`)",
                provider=self.name,
            )
        if error.status == 501 or "infill is not supported" in error.message.lower():
            text = (
                "the model llama-server loaded has no fill-in-the-middle tokens; start it with "
                "a FIM model such as Qwen2.5-Coder (chat still works)"
            )
            return BadRequest(
                text,
                status=error.status,
                rest_for=NO_FIM_REST,
                user_message=f"llamacpp: {text}",
                provider=self.name,
            )
        return super().explain(error)

    async def prewarm(self) -> None:
        """`GET /health`: open the connection with a request llama-server answers 200."""
        await self.warm(self._url("/health"), method="GET", headers=self._headers())


def build(parts: Parts) -> LlamaCppProvider:
    provider = LlamaCppProvider(
        parts.settings.providers.llamacpp,
        env=parts.env,
        clients=parts.clients,
        metrics=parts.metrics.provider("llamacpp"),
    )
    provider.budgets.notify = parts.tell
    return provider
