"""Ollama: `/api/generate` for fill-in-the-middle and `/api/chat` for chat, both streamed as
NDJSON.

Ollama's rules that decide whether a completion is FIM at all: the model's template (and with
it FIM) is used only when `suffix` is non-empty; an empty suffix wraps the prompt as a chat
message, which the model answers like a question. So an empty suffix is sent as `raw: true`
with the model family's FIM template written here (core/prompts.py), or as a lone newline for
a family we do not know. Snippets of other files go
into the prompt as a repository: with the family's repository-level tokens where it has them
(Qwen2.5-Coder, StarCoder2; sent raw), else as comments ahead of the file. The model is kept
loaded (`keep_alive`), its context sized to the prompt (`num_ctx`), and thinking models are
told not to think for completions.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator

from reaper_lsp.core.budget import Prompt, PromptBudgets
from reaper_lsp.core.prompts import fim_parts, path_header, raw_fim_prompt, repo_fim_prompt
from reaper_lsp.net.client import Clients, StreamContext
from reaper_lsp.net.metrics import ProviderMetrics
from reaper_lsp.providers.base import ChatRequest, CompletionRequest, Kind, Origin, Parts
from reaper_lsp.providers.errors import (
    BadRequest,
    ContextTooLong,
    ProtocolError,
    ProviderError,
    Unreachable,
    error_from_stream_payload,
)
from reaper_lsp.providers.exchange import note_text, note_tokens
from reaper_lsp.providers.http import NDJSON, HTTPProvider
from reaper_lsp.settings import OllamaSettings

MIN_NUM_CTX = 2048
MAX_NUM_CTX = 32768
"""Beyond this a larger context costs the user's memory more than a shorter prompt costs."""
CHARS_PER_TOKEN = 3
"""Code runs at 3-4 characters a token; the smaller figure errs towards a context that fits."""
THINKING = "*thinking…*\n\n"
"""Shown once in a chat answer while a thinking model thinks (its thoughts are not shown)."""


def num_ctx(prompt_chars: int, max_tokens: int) -> int:
    """A context that holds the prompt and the answer: a power of two, 2048 at least (a new
    size reloads the model, so sizes are few), `MAX_NUM_CTX` at most."""
    need = math.ceil(prompt_chars / CHARS_PER_TOKEN) + max_tokens
    size = MIN_NUM_CTX
    while size < need and size < MAX_NUM_CTX:
        size *= 2
    return size


def generate_body(
    settings: OllamaSettings, parts: Prompt, request: CompletionRequest, context: int
) -> dict[str, object]:
    """The `/api/generate` body for one completion: FIM whatever the suffix, in a context of
    `context` tokens."""
    ctx = parts.context
    prompt, suffix = fim_parts(ctx, parts.snippets)
    options: dict[str, object] = {
        "num_predict": request.max_tokens,
        "temperature": 0,
        "num_ctx": context,
    }
    if request.stop:
        options["stop"] = list(request.stop)
    body: dict[str, object] = {"model": settings.model, "stream": True}
    raw = None
    if parts.snippets:  # the template knows one file: other files need the raw format
        raw = repo_fim_prompt(settings.model, ctx.path, parts.snippets, ctx.prefix, ctx.suffix)
    if raw is None and not suffix:
        raw = raw_fim_prompt(settings.model, prompt, suffix)
    if raw is not None:
        body.update(prompt=raw, raw=True)
    else:
        # A newline after the cursor changes nothing the model should write, and a non-empty
        # suffix is what makes Ollama use the model's FIM template.
        body.update(prompt=prompt, suffix=suffix or "\n")
    body.update(options=options, keep_alive=settings.keep_alive, think=False)
    return body


class OllamaProvider(HTTPProvider):
    name = "ollama"

    def __init__(
        self,
        settings: OllamaSettings,
        *,
        clients: Clients,
        metrics: ProviderMetrics,
        prompt_chars: int = 0,
        max_tokens: int = 128,
    ) -> None:
        super().__init__(clients=clients, metrics=metrics, base_url=settings.base_url)
        self._settings = settings
        self._model = settings.model
        """The model of the latest request (named in error explanations)."""
        self.budgets = PromptBudgets(self.name)
        self._contexts: dict[str, int] = {
            settings.model: num_ctx(prompt_chars, max_tokens) if prompt_chars else MIN_NUM_CTX
        }
        """`num_ctx` by model. It only grows: Ollama reloads a model whose context changes, so
        it starts at the size for the configured prompt budget (`prompt_chars`, what the
        warm-up loads) and short prompts do not make it shrink."""

    def model_for(self, kind: Kind) -> str:
        return self._settings.chat_model if kind == "chat" else self._settings.model

    async def stream_completion(self, request: CompletionRequest) -> AsyncIterator[str]:
        async def send(parts: Prompt) -> AsyncGenerator[str, None]:
            body = generate_body(self._settings, parts, request, context)
            async for piece in self._stream("/api/generate", body, "response", request.origin):
                yield piece

        model = self.model_for("completion")
        # Sized for the whole context even when the prompt is cut to fit: cutting it is what
        # makes a prompt whose tokens were underestimated fit.
        prompt = Prompt(request.context, request.snippets)
        whole = prompt.size + len(path_header(request.context))
        context = self._context(model, num_ctx(whole, request.max_tokens))
        async for piece in self.budgets.stream(model, prompt, send, ContextTooLong):
            yield piece

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        chars = sum(len(m.content) for m in request.messages)
        body: dict[str, object] = {
            "model": self.model_for("chat"),
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "keep_alive": self._settings.keep_alive,
            "options": {
                "num_predict": request.max_tokens,
                "num_ctx": self._context(
                    self.model_for("chat"), num_ctx(chars, request.max_tokens)
                ),
            },
        }
        if not self._settings.think:
            # Only `false` is sent: `true` is refused by models that cannot think, and
            # thinking models think unless told otherwise.
            body["think"] = False
        async for piece in self._stream("/api/chat", body, "message", request.origin):
            yield piece

    def _context(self, model: str, needed: int) -> int:
        size = self._contexts[model] = max(self._contexts.get(model, 0), needed)
        return size

    async def _stream(
        self, path: str, body: dict[str, object], field: str, origin: Origin
    ) -> AsyncIterator[str]:
        self._model = str(body["model"])
        url = self._settings.base_url.rstrip("/") + path
        async with self.open(url, body, origin=origin, accept=NDJSON) as stream:
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
        thinking_shown = field != "message"  # completions never show thoughts
        async for payload in self.ndjson(stream):
            if "error" in payload:
                raise error_from_stream_payload(self.name, payload)
            value = payload.get(field)
            thought = payload.get("thinking")
            if isinstance(value, dict):
                thought = value.get("thinking")
                value = value.get("content")
            if thought and not thinking_shown:
                thinking_shown = True
                yield THINKING  # the user sees the model is at work, not a stalled answer
            if isinstance(value, str) and value:
                note_text(stream, value)
                yield value
            if payload.get("done"):
                note_tokens(
                    stream,
                    prompt=payload.get("prompt_eval_count"),
                    output=payload.get("eval_count"),
                )
                return
        raise ProtocolError("stream ended before done", provider=self.name)

    async def prewarm(self) -> None:
        """Load the completion model now (an empty prompt only loads it, and `keep_alive`
        keeps it), so the first keystroke does not wait seconds for the load."""
        model = self._settings.model
        body = {
            "model": model,
            "prompt": "",
            "keep_alive": self._settings.keep_alive,
            # Loaded with the context the completions will ask for: another size reloads it.
            "options": {"num_ctx": self._contexts.get(model, MIN_NUM_CTX)},
        }
        url = self._settings.base_url.rstrip("/") + "/api/generate"
        await self.warm(url, method="POST", body=body)


def build(parts: Parts) -> OllamaProvider:
    completion = parts.settings.completion
    provider = OllamaProvider(
        parts.settings.providers.ollama,
        clients=parts.clients,
        metrics=parts.metrics.provider("ollama"),
        prompt_chars=(
            completion.max_prefix_chars + completion.max_suffix_chars + completion.max_context_chars
        ),
        max_tokens=completion.max_tokens,
    )
    provider.budgets.notify = parts.tell
    return provider
