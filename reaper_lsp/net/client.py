"""HTTP clients for providers: one long-lived httpx.AsyncClient per provider (HTTP/2, pool
limits, timeouts, TLS policy from `[http]`), and one streaming-request helper that opens a
response, checks its status and content type, and counts what crosses the wire.

Failures are reported as `net.errors` only; what they mean to a provider is decided above.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from reaper_lsp.net import h2reset
from reaper_lsp.net import httpcore_internals as internals
from reaper_lsp.net.auto import AutoTransport, quic_ready, transport_for
from reaper_lsp.net.errors import (
    BadTLSSettings,
    ConnectFailed,
    ConnectionLost,
    HTTPStatusError,
    MalformedStream,
    NetError,
    StreamTooLarge,
    TimedOut,
)
from reaper_lsp.net.h3_state import EARLY_DATA
from reaper_lsp.net.metrics import ProviderMetrics
from reaper_lsp.settings import HttpSettings

log = logging.getLogger(__name__)

MAX_ERROR_BODY = 64 * 1024
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
DRAIN_SECONDS = 0.25


def ssl_context(http: HttpSettings) -> ssl.SSLContext | bool:
    """The TLS policy: system/certifi roots plus `ca_file`, minimum version, or (only when the
    user said so) no verification at all."""
    if not http.tls.verify_certificates:
        return False
    import certifi

    ctx = ssl.create_default_context(cafile=certifi.where())
    if http.tls.ca_file:
        try:
            ctx.load_verify_locations(cafile=http.tls.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise BadTLSSettings(
                f"http.tls.ca_file {http.tls.ca_file!r} cannot be used "
                f"({exc.strerror if isinstance(exc, OSError) and exc.strerror else exc})"
            ) from None
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if http.tls.min_version == "tls_1_3" else ssl.TLSVersion.TLSv1_2
    )
    return ctx


def build_client(
    http: HttpSettings,
    *,
    verify: ssl.SSLContext | bool | None = None,
    state_dir: Path | None = None,
) -> tuple[httpx.AsyncClient, AutoTransport]:
    """A pooled client following `[http]`, on a transport that speaks HTTP/3 where an origin
    offers it (`protocol = "auto"`), HTTP/2 or HTTP/1.1 otherwise; and that transport (for
    status). QUIC session tickets and learned Alt-Svc records live in `state_dir`."""
    h2reset.install()
    transport = transport_for(
        http, verify=ssl_context(http) if verify is None else verify, state_dir=state_dir
    )
    client = httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(
            connect=http.connect_timeout / 1000,
            read=http.read_timeout / 1000,
            write=http.write_timeout / 1000,
            pool=http.connect_timeout / 1000,
        ),
        follow_redirects=False,
    )
    return client, transport


class Clients:
    """One client per provider name, built on first use and rebuilt when `[http]` changes."""

    def __init__(self, http: HttpSettings, *, state_dir: Path | None = None) -> None:
        self._http = http
        self._state_dir = state_dir
        self._verify: ssl.SSLContext | bool | None = None
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._transports: dict[str, AutoTransport] = {}

    def get(self, provider: str) -> httpx.AsyncClient:
        client = self._clients.get(provider)
        if client is None:
            if self._verify is None:
                self._verify = ssl_context(self._http)  # raises BadTLSSettings
                if self._verify is False:
                    log.warning(
                        "TLS certificate verification is OFF (http.tls.verify_certificates)"
                    )
            client, transport = build_client(
                self._http, verify=self._verify, state_dir=self._state_dir
            )
            self._clients[provider], self._transports[provider] = client, transport
        return client

    async def prepare(self, *, quic: bool = False) -> None:
        """Do in threads, ahead of the first request, what it would do on the event loop
        (holding up the editors it serves, and a QUIC answer racing its TCP connection):
        load the TLS roots (OpenSSL parsing certifi's bundle, 20-70 ms), import what
        httpcore's first connection imports (~25 ms) and, with `quic`, aioquic (80-200 ms).
        Problems are left for the requests to raise. One after the other: threads importing
        side by side would take the GIL from the event loop all the more."""
        with contextlib.suppress(Exception):
            if quic:
                await quic_ready()
            await asyncio.to_thread(self._prepare_tcp)

    def _prepare_tcp(self) -> None:
        internals.preload_first_connection()
        if self._verify is not None:
            return
        http = self._http
        try:
            verify = ssl_context(http)
        except BadTLSSettings:
            return
        if isinstance(verify, ssl.SSLContext) and self._verify is None and http == self._http:
            self._verify = verify  # (a plain assignment: safe from a thread)

    def update(self, http: HttpSettings) -> None:
        """Use `http` from now on; clients built for the old settings close in the background."""
        if http == self._http:
            return
        self._http = http
        self._verify = None
        old, self._clients, self._transports = self._clients, {}, {}
        if old:
            task = asyncio.get_running_loop().create_task(_close_all(old.values()))
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    def snapshot(self) -> dict[str, object]:
        """Per provider: the protocol in use per origin, 0-RTT and handshake figures."""
        return {name: self._transports[name].snapshot() for name in sorted(self._transports)}

    async def aclose(self) -> None:
        clients, self._clients, self._transports = self._clients, {}, {}
        for client in clients.values():
            await client.aclose()


_closing: set[asyncio.Task[None]] = set()


async def _close_all(clients: Iterable[httpx.AsyncClient]) -> None:
    for client in clients:
        await client.aclose()


@dataclass(slots=True)
class StreamContext:
    """An open streamed response plus the bookkeeping shared by every provider."""

    response: httpx.Response
    metrics: ProviderMetrics
    origin: str
    started: float
    first_byte: float = 0.0
    received: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    """What the provider's decoder read of the answer's cost (tokens, characters of text)."""
    _raw: AsyncIterator[bytes] | None = None

    @property
    def content_type(self) -> str:
        return str(self.response.headers.get("content-type", ""))

    async def chunks(self) -> AsyncIterator[bytes]:
        """Raw body bytes, counted and capped; decoders split them (never `iter_lines`)."""
        if self._raw is None:
            self._raw = self.response.aiter_raw()
        try:
            async for chunk in self._raw:
                if not chunk:
                    continue
                if not self.first_byte:
                    self.first_byte = time.perf_counter()
                    self.metrics.first_byte_ms.append((self.first_byte - self.started) * 1000)
                self.received += len(chunk)
                self.metrics.bytes_received += len(chunk)
                if self.received > MAX_RESPONSE_BYTES:
                    raise StreamTooLarge(
                        f"response from {self.origin} is over {MAX_RESPONSE_BYTES} bytes"
                    )
                yield chunk
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.origin) from None

    async def drain(self) -> None:
        """Read what is left of a finished message (the end of the chunked body, a trailing
        newline) so the connection goes back to the pool instead of being dropped."""
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                async for _ in self.chunks():
                    pass
        except (TimeoutError, NetError):
            return


def origin_of(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")


def _transport_error(exc: httpx.HTTPError, origin: str) -> NetError:
    if isinstance(exc, httpx.ConnectTimeout):
        return TimedOut(f"timed out connecting to {origin}")
    if isinstance(exc, httpx.ConnectError):
        return ConnectFailed(f"cannot connect to {origin}")
    if isinstance(exc, httpx.TimeoutException):
        return TimedOut(f"timed out talking to {origin}")
    return ConnectionLost(f"connection to {origin} failed ({type(exc).__name__})")


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    url: str,
    *,
    body: Mapping[str, object],
    headers: Mapping[str, str],
    metrics: ProviderMetrics,
    accept: str,
    auth: httpx.Auth | None = None,
) -> AsyncIterator[StreamContext]:
    """POST `body` as JSON and yield the open response once its status is known to be OK.

    Raises `net.errors` only. Leaving the block early (cancellation, early stop) closes the
    response, which resets the HTTP/2 stream or drops the HTTP/1.1 connection: the server stops
    generating. `auth` runs before the body is streamed, so a refreshed credential can never
    replay text that was already read.
    """
    content = json.dumps(body, ensure_ascii=False).encode()
    request = client.build_request(
        "POST",
        url,
        content=content,
        headers={**headers, "content-type": "application/json", "accept": accept},
        # A completion or chat request may ride in QUIC early data (0-RTT): replaying it harms
        # nothing. Sign-in and token requests never go through here.
        extensions={EARLY_DATA: True},
    )
    origin = origin_of(request.url)
    metrics.requests += 1
    metrics.bytes_sent += len(content)
    started = time.perf_counter()
    stream: StreamContext | None = None
    status = 0
    ok = False
    try:
        try:
            response = await client.send(request, stream=True, auth=auth)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, origin) from None
        status = response.status_code
        try:
            if response.status_code >= 400:
                raw = await _read_limited(response)
                raise HTTPStatusError(response.status_code, response.headers, raw, origin)
            content_type = response.headers.get("content-type", "")
            if accept.split(";")[0] not in content_type and "json" not in content_type:
                raise MalformedStream(
                    f"{origin} answered with content type {content_type or 'none'!r}"
                )
            stream = StreamContext(response, metrics, origin, started)
            yield stream
            ok = True
            # The message is complete: finish the body so HTTP/1.1 keeps the connection and
            # HTTP/2 ends the stream cleanly. (Leaving early — cancellation, early stop — skips
            # this and closes the stream instead.)
            await stream.drain()
        finally:
            await response.aclose()
    except NetError as exc:
        metrics.failures += 1
        metrics.last_error = str(exc)
        raise
    except (asyncio.CancelledError, GeneratorExit):
        metrics.cancelled += 1  # superseded, cancelled by the client, or stopped early
        raise
    except Exception:  # an auth flow's error, or the caller's decoding error
        metrics.failures += 1
        raise
    finally:
        total = (time.perf_counter() - started) * 1000
        if ok:
            metrics.total_ms.append(total)
        if log.isEnabledFor(logging.DEBUG):
            first = (stream.first_byte - started) * 1000 if stream and stream.first_byte else 0.0
            log.debug(
                "POST %s%s -> %s, %d bytes sent, %d received, first byte %.1f ms, total %.1f ms%s",
                origin,
                request.url.path,
                status or "no answer",
                len(content),
                stream.received if stream else 0,
                first,
                total,
                "" if ok else " (not completed)",
            )


async def prewarm(
    client: httpx.AsyncClient,
    url: str,
    *,
    method: str = "HEAD",
    body: Mapping[str, object] | None = None,
    headers: Mapping[str, str] | None = None,
) -> int | None:
    """Open (and so keep warm) the connection to `url`'s origin: DNS, TCP, TLS and HTTP/2 are
    paid now rather than on the user's first keystroke. Providers pick a request their server
    answers without an error (`GET /health`, `GET /models`, Ollama's empty `/api/generate`
    that loads the model); HEAD is for servers that have none. Returns the status, or None
    when nothing answered; failures are only logged (the first real request reports them)."""
    origin = origin_of(httpx.URL(url))
    started = time.perf_counter()
    try:
        response = await client.request(method, url, json=body, headers=dict(headers or {}))
        await response.aclose()
    except httpx.HTTPError as exc:
        log.info("prewarming %s failed: %s", origin, type(exc).__name__)
        return None
    log.debug(
        "%s %s%s -> %s (warm-up), total %.1f ms",
        method,
        origin,
        httpx.URL(url).path,
        response.status_code,
        (time.perf_counter() - started) * 1000,
    )
    return response.status_code


async def _read_limited(response: httpx.Response) -> bytes:
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_raw():
            parts.append(chunk)
            size += len(chunk)
            if size >= MAX_ERROR_BODY:
                break
    except httpx.HTTPError:
        pass  # the status says enough
    return b"".join(parts)[:MAX_ERROR_BODY]
