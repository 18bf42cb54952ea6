"""The one base for providers that speak HTTP: open a streamed POST, decode its events (SSE,
NDJSON, the OpenAI-style `choices` stream that OpenAI, Copilot and llama-server share), warm and
keep warm the connection, and map every network failure to the provider error tree in one place.
It is also where every request leaves the process, so it enforces what may leave (`exchange.py`):
a request whose origin must stay on the machine, or to a provider whose daily token budget is
spent, is never sent; every body is scrubbed of credential-shaped strings; and each request is
recorded in the ledger (the audit log, the budgets) once it ended.

Credentials that expire (Copilot's token, a Google access token) are `RefreshingBearer` auth
flows: a 401/403 is answered by a fresh token and one more try *before* any of the body is read,
so a refresh can never replay text the user has already seen.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar

import httpx

from reaper_lsp.net import keepalive
from reaper_lsp.net.client import Clients, StreamContext, open_stream, prewarm
from reaper_lsp.net.errors import NetError
from reaper_lsp.net.metrics import ProviderMetrics
from reaper_lsp.net.streams import NDJSONDecoder, SSEDecoder, SSEEvent
from reaper_lsp.providers.base import ChatRequest, Ledger, Origin, Unrecorded
from reaper_lsp.providers.errors import (
    AuthError,
    ProtocolError,
    ProviderError,
    error_from_stream_payload,
    from_net_error,
)
from reaper_lsp.providers.exchange import (
    Sending,
    admit,
    note_openai_usage,
    note_text,
    paused_on_quota,
)

log = logging.getLogger(__name__)

KEY_REJECTED_REST = 60.0
"""Seconds a provider whose key was rejected is skipped (the user was told)."""
SSE = "text/event-stream"
NDJSON = "application/x-ndjson"


class RefreshingBearer(httpx.Auth):
    """`Authorization: Bearer <token>` from an async getter; on 401/403 the token is dropped,
    a fresh one fetched, and the request sent once more."""

    def __init__(
        self,
        token: Callable[[bool], Awaitable[str]],
        invalidate: Callable[[], None],
    ) -> None:
        self._token = token
        self._invalidate = invalidate

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, Any, None]:
        raise RuntimeError("RefreshingBearer works with the async client only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["authorization"] = f"Bearer {await self._token(False)}"
        response = yield request
        if response.status_code in (401, 403):
            self._invalidate()
            request.headers["authorization"] = f"Bearer {await self._token(True)}"
            yield request


class HTTPProvider:
    """What every HTTP provider shares: its client (asked for per request, so a `[http]` change
    takes effect at once), its metrics, warm-up, and the error boundary. Subclasses add
    `model_for` and the two streams of the `Provider` protocol."""

    name = "http"
    ledger: Ledger = Unrecorded()
    """Told of every request (the registry gives each provider the App's)."""

    def __init__(self, *, clients: Clients, metrics: ProviderMetrics, base_url: str = "") -> None:
        self._clients = clients
        self._metrics = metrics
        self._origin_url = base_url
        """Where this provider's requests go (updated by every request and warm-up)."""

    def unusable_reason(self) -> str | None:
        return None

    def explain(self, error: ProviderError) -> ProviderError:
        """A provider's chance to say what an error means for it (and what fixes it)."""
        return error

    @asynccontextmanager
    async def open(
        self,
        url: str,
        body: dict[str, object],
        *,
        origin: Origin,
        headers: dict[str, str] | None = None,
        accept: str = SSE,
        auth: httpx.Auth | None = None,
    ) -> AsyncIterator[StreamContext]:
        """The open response of a streamed POST of `body` (scrubbed first) for a request of
        `origin`. Network failures — while connecting or in the middle of the stream, as the
        caller reads it — surface as provider errors; `Withheld` when it may not be sent."""
        admit(self.name, origin, self.ledger)
        try:
            client = self._clients.get(self.name)
        except NetError as exc:
            raise self.explain(from_net_error(self.name, exc)) from None
        sending = Sending(self.name, self._model_of(body, origin), origin, body)
        self._origin_url = url
        usage: dict[str, int] | None = None  # set once an answer is coming
        failure: BaseException | None = None
        try:
            async with open_stream(
                client,
                url,
                body=sending.body,
                headers=headers or {},
                metrics=self._metrics,
                accept=accept,
                auth=auth,
            ) as stream:
                usage = stream.usage
                yield stream
        except NetError as exc:
            failure = paused_on_quota(self.explain(from_net_error(self.name, exc)))
            raise failure from None
        except ProviderError as exc:
            failure = paused_on_quota(self.explain(exc))
            raise failure from None
        except BaseException as exc:  # cancelled, or closed early by the reader: recorded
            failure = exc
            raise
        finally:
            self.ledger.record(sending.finish(usage, failure))
            failure = None  # the traceback holds this frame: keep it out of a reference cycle

    def _model_of(self, body: Mapping[str, object], origin: Origin) -> str:
        model = body.get("model")
        if isinstance(model, str) and model:
            return model
        model_for = getattr(self, "model_for", None)  # every concrete provider has one
        kind = "chat" if origin.purpose in ("chat", "action") else "completion"
        return str(model_for(kind)) if model_for is not None else ""

    async def sse(self, stream: StreamContext) -> AsyncIterator[SSEEvent]:
        decoder = SSEDecoder()
        async for chunk in stream.chunks():
            for event in decoder.feed(chunk):
                yield event
        decoder.close()

    async def ndjson(self, stream: StreamContext) -> AsyncIterator[dict[str, object]]:
        decoder = NDJSONDecoder()
        async for chunk in stream.chunks():
            for line in decoder.feed(chunk):
                yield self.json_object(line)
        for line in decoder.close():
            yield self.json_object(line)

    def json_object(self, data: str | bytes) -> dict[str, object]:
        try:
            payload = json.loads(data)
        except ValueError:
            raise ProtocolError("stream event is not JSON", provider=self.name) from None
        if not isinstance(payload, dict):
            raise ProtocolError("stream event is not a JSON object", provider=self.name)
        return payload

    async def get_json(self, url: str, headers: Mapping[str, str]) -> object | None:
        """`GET url` as JSON, or None when it failed in any way (warm-up probes: the first real
        request reports what is wrong)."""
        try:
            client = self._clients.get(self.name)
            response = await client.get(url, headers=dict(headers))
        except (NetError, httpx.HTTPError) as exc:
            log.info("prewarming %s failed: %s", self.name, type(exc).__name__)
            return None
        log.debug("GET %s -> %s (warm-up)", url, response.status_code)
        if response.status_code != 200:
            return None
        try:
            found: object = json.loads(response.content)
        except ValueError:
            return None
        return found

    async def warm(self, url: str, **request: Any) -> None:
        """Open the connection to `url`'s origin ahead of the first request (`request`: the
        method, body and headers of a request the server answers without an error)."""
        self._origin_url = url
        try:
            client = self._clients.get(self.name)
        except NetError as exc:
            log.info("not prewarming %s: %s", self.name, exc)
            return
        await prewarm(client, url, **request)

    async def prewarm(self) -> None:
        """Open the connection to where the requests go (subclasses pick a better request)."""
        if self._origin_url:
            await self.warm(self._origin_url)

    async def keep_warm(self) -> None:
        """PING the idle connection, or open a new one when the server closed it: the next
        keystroke must not pay a handshake."""
        url = self._origin_url
        if not url:
            return
        try:
            client = self._clients.get(self.name)
        except NetError:
            return
        stale = await keepalive.close_stale(client, url, idle_for=keepalive.RENEW_AFTER)
        if not stale and keepalive.open_connections(client, url):
            await keepalive.ping(client, url)
        else:
            await self.prewarm()

    async def aclose(self) -> None:
        return None


class KeySettings(Protocol):
    @property
    def api_key_env(self) -> str: ...

    @property
    def api_key(self) -> str: ...

    def resolve_api_key(self, env: Mapping[str, str]) -> str: ...


S = TypeVar("S", bound=KeySettings)


class KeyedProvider(HTTPProvider, Generic[S]):
    """An HTTP provider whose credential is an API key, from the config or the environment."""

    def __init__(
        self,
        settings: S,
        *,
        env: Mapping[str, str],
        clients: Clients,
        metrics: ProviderMetrics,
        base_url: str = "",
    ) -> None:
        super().__init__(clients=clients, metrics=metrics, base_url=base_url)
        self._settings = settings
        self._key = settings.resolve_api_key(env)

    def explain(self, error: ProviderError) -> ProviderError:
        """A rejected key is something the user must fix: say which key, once."""
        if isinstance(error, AuthError) and not error.user_message:
            env = self._settings.api_key_env
            source = (
                f"${env}"
                if env and not self._settings.api_key
                else f"providers.{self.name}.api_key"
            )
            error.user_message = (
                f"{self.name} rejected the API key from {source} (HTTP {error.status or 401}); "
                "the next provider in the chain answers until it is fixed"
            )
            error.rest_for = error.rest_for or KEY_REJECTED_REST
        return error

    def missing_key(self) -> str | None:
        if self._key:
            return None
        return f"no API key (set {self._settings.api_key_env} or providers.{self.name}.api_key)"


def chat_body(model: str, request: ChatRequest, **extra: object) -> dict[str, object]:
    """An OpenAI-style streamed chat request body (OpenAI, Copilot, compatible servers)."""
    return {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "max_tokens": request.max_tokens,
        "stream": True,
        **extra,
    }


def choice_text(choice: Mapping[str, object]) -> str:
    """Text of one streamed choice: chat `delta.content` or completions `text`."""
    for key in ("delta", "message"):
        part = choice.get(key)
        if isinstance(part, dict):
            content = part.get("content")
            return content if isinstance(content, str) else ""
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def temperature_for(n: int) -> float:
    """Several choices from one request differ only when sampled: 0 for one (the likeliest
    text), a little above for alternatives (what Copilot's own client sends for n < 10)."""
    return 0.0 if n <= 1 else 0.2


def _chunk_texts(
    provider: HTTPProvider, stream: StreamContext, payload: dict[str, object]
) -> list[tuple[int, str]]:
    """(choice index, text) of one streamed chunk; n > 1 interleaves choices by index. The
    usage and the text are noted on `stream` for the ledger."""
    if payload.get("error") is not None:
        raise error_from_stream_payload(provider.name, payload)
    note_openai_usage(stream, payload)
    choices = payload.get("choices")
    if not isinstance(choices, list):
        return []
    out = []
    for choice in choices:
        if isinstance(choice, dict):
            index = choice.get("index", 0)
            text = choice_text(choice)
            if isinstance(index, int) and not isinstance(index, bool) and index >= 0 and text:
                out.append((index, text))
    note_text(stream, "".join(text for _, text in out))
    return out


async def stream_choices(
    provider: HTTPProvider,
    url: str,
    body: dict[str, object],
    headers: dict[str, str],
    origin: Origin,
) -> AsyncIterator[str]:
    """POST an OpenAI-style streamed request and yield its text (chat on every OpenAI-style
    server: OpenAI, llama-server, LiteLLM, Copilot)."""
    async with provider.open(url, body, origin=origin, headers=headers) as stream:
        async for piece in read_choices(provider, stream):
            yield piece


async def read_choices(provider: HTTPProvider, stream: StreamContext) -> AsyncIterator[str]:
    """The text of the first choice of a data-only SSE stream (see `read_indexed_choices`)."""
    async for index, text in read_indexed_choices(provider, stream):
        if index == 0:
            yield text


async def read_indexed_choices(
    provider: HTTPProvider, stream: StreamContext
) -> AsyncIterator[tuple[int, str]]:
    """Decode a data-only SSE stream (OpenAI, Copilot, compatible servers) into (choice index,
    text piece) until `[DONE]`. A server that ignored `stream: true` and answered one JSON
    object is accepted too."""
    if SSE not in stream.content_type:
        raw = b"".join([chunk async for chunk in stream.chunks()])
        for found in _chunk_texts(provider, stream, provider.json_object(raw)):
            yield found
        return
    async for event in provider.sse(stream):
        data = event.data.strip()
        if data.startswith("[DONE]"):
            return
        for found in _chunk_texts(provider, stream, provider.json_object(data)):
            yield found
    raise ProtocolError("stream ended without [DONE]", provider=provider.name)
