"""llama.cpp's `llama-server`: fill-in-the-middle through its own `/infill` endpoint (prefix,
suffix, and snippets of the other open documents as `input_extra`), chat through its
OpenAI-compatible `/v1/chat/completions`.

Its `/v1/completions` accepts `suffix` and ignores it, so the `openai` provider cannot do FIM
against it; this provider is the way to use a local llama-server for completions.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass

from reaper_lsp.config import LlamaCppSettings
from reaper_lsp.core.budget import PromptBudgets
from reaper_lsp.core.document import Document, strip_terminator
from reaper_lsp.core.types import CompletionContext
from reaper_lsp.net.client import Clients, StreamContext, prewarm
from reaper_lsp.net.errors import NetError
from reaper_lsp.net.metrics import ProviderMetrics
from reaper_lsp.providers import errors
from reaper_lsp.providers.base import ChatRequest, CompletionRequest, Kind
from reaper_lsp.providers.errors import BadRequest, ProviderError, Unreachable
from reaper_lsp.providers.http import SSE, KeyedProvider, chat_body
from reaper_lsp.providers.openai import stream_choices

MAX_STOPS = 16
"""llama-server takes any number of stop strings; more than this is a mistake upstream."""
NO_FIM_REST = 600.0
"""Seconds to skip a server whose model has no FIM tokens (it will not grow them)."""

# input_extra: snippets of other open documents that share names with the code at the cursor.
EXTRA_CHUNKS = 3
EXTRA_CHUNK_LINES = 12
EXTRA_TOTAL_CHARS = 4000
CURSOR_LINES = 12
"""Lines before the cursor whose identifiers pick the snippets."""
MAX_DOCUMENT_LINES = 5000
"""Longer documents are not searched (the search must cost well under a millisecond)."""

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_COMMON = frozenset(
    {
        "def", "return", "self", "none", "true", "false", "class", "import", "from", "for",
        "while", "with", "elif", "else", "this", "const", "let", "var", "function", "public",
        "private", "static", "void", "int", "str", "string", "new", "null",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Snippet:
    filename: str
    text: str
    score: int


def cursor_names(ctx: CompletionContext) -> set[str]:
    """Identifiers in the lines just before the cursor, common keywords left out."""
    recent = "\n".join(ctx.prefix.splitlines()[-CURSOR_LINES:])
    return {n for n in _IDENT.findall(recent) if n.lower() not in _COMMON}


STEP = EXTRA_CHUNK_LINES // 2
"""Windows start every STEP lines, so each overlaps the next by half."""
COMMON_WINDOWS = 64
"""A name found in more windows of a document than this says nothing about where to look."""


def _windows(doc: Document) -> dict[str, frozenset[int]]:
    """Each name in `doc` and the windows (window k: lines k·STEP to k·STEP + CHUNK) it is in."""
    found: dict[str, set[int]] = {}
    for number, line in enumerate(doc.lines):
        bucket = number // STEP
        for name in _IDENT.findall(line):
            windows = found.setdefault(name, set())
            windows.add(bucket)
            if bucket:
                windows.add(bucket - 1)
    return {name: frozenset(w) for name, w in found.items() if len(w) <= COMMON_WINDOWS}


class SnippetIndex:
    """Where names occur in each open document, rebuilt only when a document's version changes:
    finding the snippets then costs a few dictionary look-ups per name, not a scan."""

    def __init__(self) -> None:
        self._docs: dict[str, tuple[int, dict[str, frozenset[int]]]] = {}

    def related(
        self,
        ctx: CompletionContext,
        documents: Iterable[Document],
        name_of: Callable[[str], str],
    ) -> list[Snippet]:
        """The windows of other open documents that mention most of the names at the cursor,
        best first, at most `EXTRA_CHUNKS` of them and `EXTRA_TOTAL_CHARS` in all."""
        names = cursor_names(ctx)
        seen: dict[str, tuple[int, dict[str, frozenset[int]]]] = {}
        found: list[Snippet] = []
        for doc in documents:
            if doc.uri == ctx.uri or len(doc.lines) > MAX_DOCUMENT_LINES:
                continue
            known = self._docs.get(doc.uri)
            if known is None or known[0] != doc.version:
                known = (doc.version, _windows(doc))
            seen[doc.uri] = known
            scores: dict[int, int] = {}
            for name in names:
                for window in known[1].get(name, ()):
                    scores[window] = scores.get(window, 0) + 1
            if scores:
                window, best = max(scores.items(), key=lambda item: (item[1], -item[0]))
                first = window * STEP
                lines = doc.lines[first : first + EXTRA_CHUNK_LINES]
                text = "".join(strip_terminator(line) + "\n" for line in lines if line)
                found.append(Snippet(name_of(doc.uri), text, best))
        self._docs = seen  # documents closed since are forgotten
        found.sort(key=lambda s: -s.score)
        kept: list[Snippet] = []
        total = 0
        for snippet in found[:EXTRA_CHUNKS]:
            if total + len(snippet.text) > EXTRA_TOTAL_CHARS:
                break
            kept.append(snippet)
            total += len(snippet.text)
        return kept


def related_snippets(
    ctx: CompletionContext, documents: Iterable[Document], name_of: Callable[[str], str]
) -> list[Snippet]:
    """`SnippetIndex.related` without an index kept between calls."""
    return SnippetIndex().related(ctx, documents, name_of)


def _last_part(uri: str) -> str:
    return uri.rpartition("/")[2]


class LlamaCppProvider(KeyedProvider[LlamaCppSettings]):
    name = "llamacpp"

    def __init__(
        self,
        settings: LlamaCppSettings,
        *,
        env: Mapping[str, str],
        clients: Clients,
        metrics: ProviderMetrics,
        documents: Iterable[Document] = (),
        name_of: Callable[[str], str] = _last_part,
    ) -> None:
        """`documents`: the open documents, searched for `input_extra`; `name_of` names one
        (by its path in the workspace)."""
        super().__init__(settings, env=env, clients=clients, metrics=metrics)
        self._documents = documents
        self._name_of = name_of
        self._snippets = SnippetIndex()
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

    def infill_body(self, request: CompletionRequest, ctx: CompletionContext) -> dict[str, object]:
        body: dict[str, object] = {
            "input_prefix": ctx.prefix,
            "input_suffix": ctx.suffix,
            "input_extra": [
                {"filename": s.filename, "text": s.text}
                for s in self._snippets.related(ctx, self._documents, self._name_of)
            ],
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
        async def send(ctx: CompletionContext) -> AsyncGenerator[str, None]:
            body = self.infill_body(request, ctx)
            url = self._url("/infill")
            async with self.open(url, body, headers=self._headers()) as stream:
                async for piece in self._read_infill(stream):
                    yield piece

        model = self.model_for("completion")
        async for piece in self.budgets.stream(model, request.context, send, errors.ContextTooLong):
            yield piece

    async def _read_infill(self, stream: StreamContext) -> AsyncIterator[str]:
        """llama-server's own stream: `data: {"content": …, "stop": false}` per token, then one
        with `"stop": true`; no `[DONE]`. An answer to `stream: false` is one JSON object."""
        if SSE not in stream.content_type:
            raw = b"".join([chunk async for chunk in stream.chunks()])
            payload = self.json_object(raw)
            text = self._content(payload)
            if text:
                yield text
            return
        async for event in self.sse(stream):
            data = event.data.strip()
            if not data:
                continue
            payload = self.json_object(data)
            text = self._content(payload)
            if text:
                yield text
            if payload.get("stop") is True:
                return
        raise errors.ProtocolError("stream ended before stop", provider=self.name)

    def _content(self, payload: dict[str, object]) -> str:
        if payload.get("error") is not None:
            raise errors.error_from_stream_payload(self.name, payload)
        content = payload.get("content")
        return content if isinstance(content, str) else ""

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        body = chat_body(self.model_for("chat"), request)
        return stream_choices(self, self._url("/v1/chat/completions"), body, self._headers())

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
        try:
            client = self._clients.get(self.name)
        except NetError:
            return
        await prewarm(client, self._url("/health"), method="GET", headers=self._headers())
