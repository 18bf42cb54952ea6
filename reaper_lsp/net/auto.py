"""Which protocol carries each request (`[http] protocol`): HTTP/3 where an origin advertised it
and QUIC works, otherwise the TCP transport (HTTP/2, falling back to HTTP/1.1).

"auto" learns h3 endpoints from the `Alt-Svc` of TCP responses, then races QUIC against TCP
happy-eyeballs style: QUIC first, TCP after a short head start — unless a warm TCP connection
answers slower than the head start, which then carries the request at once while QUIC connects
for the next ones (like Chrome, which does not hold a request back from an available HTTP/2
session to wait for QUIC). QUIC that fails — at the
handshake, or afterwards: an error, a timeout, an endpoint that has not answered a replay-safe
request within `stall_after` while TCP did — is remembered (on disk too) so later requests go
straight to TCP, and a replay-safe request it failed is carried by TCP within the same call.
"http3" forces QUIC (errors if impossible); "http2" and "http1" never try it. aioquic is
imported when QUIC is first needed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import importlib
import logging
import ssl
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from reaper_lsp.net import httpcore_internals as internals
from reaper_lsp.net.altsvc import AltSvcCache, Endpoint
from reaper_lsp.net.h3_state import QuicOptions, replay_safe
from reaper_lsp.settings import HttpSettings

if TYPE_CHECKING:
    from reaper_lsp.net.h3 import H3Transport

log = logging.getLogger(__name__)

MODES = ("auto", "http3", "http2", "http1")
_QUIC_UNAVAILABLE = (httpx.ConnectError, httpx.ConnectTimeout)
"""Failures that prove nothing reached the server over QUIC, so TCP may carry the request."""


_H3_MODULE = "reaper_lsp.net.h3"
_h3_import: concurrent.futures.Future[None] | None = None
_h3_lock = threading.Lock()


def _import_h3_in_a_thread() -> concurrent.futures.Future[None]:
    global _h3_import
    with _h3_lock:
        if _h3_import is None:
            future: concurrent.futures.Future[None] = concurrent.futures.Future()

            def run() -> None:
                try:
                    importlib.import_module(_H3_MODULE)
                except BaseException as exc:  # the request that awaits it reports it
                    future.set_exception(exc)
                else:
                    future.set_result(None)

            threading.Thread(target=run, name="reaper-import-quic", daemon=True).start()
            _h3_import = future
        return _h3_import


async def quic_ready() -> None:
    """aioquic imported (80-200 ms), in a thread started once per process: a request that
    needs QUIC meanwhile awaits it instead of taking the import lock on the event loop, which
    every editor of a daemon shares."""
    if _h3_import is None and _H3_MODULE in sys.modules:
        return  # imported directly (tests, `http3` mode already in use)
    await asyncio.wrap_future(_import_h3_in_a_thread())


def origin_of(url: httpx.URL) -> str:
    port = url.port or (443 if url.scheme == "https" else 80)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}:{port}"


def transport_for(
    http: HttpSettings, *, verify: ssl.SSLContext | bool, state_dir: Path | None
) -> AutoTransport:
    """The transport `[http]` asks for. `verify` is the TCP client's TLS policy (an SSLContext
    with system roots + `ca_file` and the minimum version, or False); QUIC applies the same
    settings itself. Timeouts stay on the httpx.AsyncClient, which hands them to transports."""
    limit = max(1, min(http.pool.max_per_host, http.pool.max_total))
    protocols = {http.protocol, http.fallback}
    tcp = httpx.AsyncHTTPTransport(
        verify=verify,
        http1="http1" in protocols,
        http2=http.protocol != "http1",
        limits=httpx.Limits(
            max_connections=limit,
            max_keepalive_connections=limit,
            keepalive_expiry=http.pool.idle_timeout,
        ),
    )
    quic = QuicOptions(
        verify=http.tls.verify_certificates,
        cafile=http.tls.ca_file or None,
        min_version=http.tls.min_version,
        enable_0rtt=http.quic.enable_0rtt,
        max_idle_timeout=http.quic.max_idle_timeout,
        keepalive_expiry=http.pool.idle_timeout,
        connect_timeout=http.connect_timeout / 1000,
        state_dir=state_dir,
    )
    return AutoTransport(tcp, mode=http.protocol, quic=quic)


class AutoTransport(httpx.AsyncBaseTransport):
    """An httpx transport over `tcp` (e.g. `httpx.AsyncHTTPTransport(http2=True, ...)`) that
    moves origins to HTTP/3 when they offer it and QUIC gets through."""

    def __init__(
        self,
        tcp: httpx.AsyncBaseTransport,
        *,
        mode: str = "auto",
        quic: QuicOptions | None = None,
        head_start: float = 0.05,
        stall_after: float = 1.0,
        broken_for: float = 300.0,
        altsvc: AltSvcCache | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown protocol {mode!r} (expected one of {', '.join(MODES)})")
        self.tcp = tcp
        self.mode = mode
        self.quic = quic or QuicOptions()
        self.head_start = head_start
        self.stall_after = stall_after
        """Seconds a replay-safe request waits for a QUIC answer before TCP is asked too, on
        an endpoint that has not answered yet in this process."""
        self.broken_for = broken_for
        self.altsvc = altsvc if altsvc is not None else AltSvcCache(self.quic.state_dir)
        self._h3: H3Transport | None = None
        self._pending: dict[str, asyncio.Future[Any]] = {}
        """Background QUIC handshakes per origin; while one runs, requests take TCP."""
        self._protocols: dict[str, str] = {}
        self._slow: set[str] = set()
        """Origins whose pending handshake made a request wait a whole head start."""
        self._endpoints: dict[str, Endpoint] = {}
        self._answered: set[str] = set()
        """Origins whose QUIC endpoint answered in this process: a slow answer from them is
        waited for (a copy over TCP would cost a second upstream request)."""
        self._tcp_answer: dict[str, float] = {}
        """Per origin, the quickest TCP answer (request to response head) in seconds: at
        least one round trip, so no QUIC handshake finishes much sooner."""

    @property
    def h3(self) -> H3Transport:
        if self._h3 is None:
            from reaper_lsp.net.h3 import H3Transport

            self._h3 = H3Transport(self.quic)
        return self._h3

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = origin_of(url)
        if self.mode in ("http1", "http2") or url.scheme != "https":
            return await self._via_tcp(request, origin)
        if self.mode == "http3":
            forced = self.altsvc.lookup(origin) or (url.host, url.port or 443)
            if self._h3 is None:
                await quic_ready()
            return await self._via_quic(request, origin, forced)
        endpoint = self.altsvc.lookup(origin)
        if endpoint is None or self.altsvc.broken(origin):
            return await self._via_tcp(request, origin)
        if self._h3 is None:
            await quic_ready()
        if self.h3.connected(url.host, endpoint):
            return await self._over_quic(request, origin, endpoint)
        safe = replay_safe(request) and self.quic.enable_0rtt
        if origin in self._pending:
            # A handshake under way (a warm-up's) spent the ticket, but its connection still
            # takes early data: a replay-safe request joins it rather than opening TCP, until
            # one such request has waited out a head start for nothing.
            joinable = safe and origin not in self._slow
            if joinable and self.h3.early_pending(url.host, endpoint):
                return await self._race_requests(request, origin, endpoint)
            return await self._via_tcp(request, origin)
        if safe and (
            self.h3.can_send_early(url.host, endpoint) or self.h3.early_pending(url.host, endpoint)
        ):
            # A ticket of our own, or a connection opening with one that this request joins.
            return await self._race_requests(request, origin, endpoint)
        if self._tcp_outpaces_handshake(origin, url):
            self._watch(request, origin, endpoint)
            return await self._via_tcp(request, origin)
        return await self._race_connections(request, origin, endpoint)

    def _tcp_outpaces_handshake(self, origin: str, url: httpx.URL) -> bool:
        """A TCP connection could carry the request now, and its answers take longer than
        the head start: a QUIC handshake cannot finish within it (it takes a round trip too),
        so waiting for one would only delay this request. (Where TCP answers faster, QUIC
        keeps its head start and may take this request already.)"""
        answer = self._tcp_answer.get(origin)
        return (
            answer is not None
            and answer >= self.head_start
            and internals.can_take_request(self.tcp, url)
        )

    async def _via_tcp(self, request: httpx.Request, origin: str) -> httpx.Response:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await self.tcp.handle_async_request(request)
        took = loop.time() - started
        self._tcp_answer[origin] = min(took, self._tcp_answer.get(origin, took))
        version = response.extensions.get("http_version", b"HTTP/1.1")
        self._protocols[origin] = version.decode("ascii", "replace")
        if self.mode == "auto" and origin.startswith("https:"):
            try:
                self.altsvc.learn(origin, response.headers.get_list("alt-svc"))
            except Exception as exc:  # the answer is here: a header we cannot use costs HTTP/3
                log.info("ignoring the Alt-Svc of %s (%s)", origin, type(exc).__name__)
        return response

    async def _via_quic(
        self, request: httpx.Request, origin: str, endpoint: Endpoint
    ) -> httpx.Response:
        response = await self.h3.send(request, endpoint)
        self._protocols[origin] = "HTTP/3"
        self._endpoints[origin] = endpoint
        self._answered.add(origin)
        return response

    async def _over_quic(
        self,
        request: httpx.Request,
        origin: str,
        endpoint: Endpoint,
        attempt: asyncio.Future[httpx.Response] | None = None,
    ) -> httpx.Response:
        """Send `request` over QUIC (or finish `attempt`, already sent) with TCP behind it:
        TCP carries it when QUIC proves unreachable, and — if it is replay-safe — when QUIC
        fails after the handshake or, on an endpoint that has not answered yet, stays silent
        for `stall_after` (then both run and the first answer wins). Once TCP has answered
        where QUIC did not, QUIC is remembered as broken."""
        quic = attempt or asyncio.ensure_future(self._via_quic(request, origin, endpoint))
        replayable = replay_safe(request)
        patience = None if origin in self._answered or not replayable else self.stall_after
        started = asyncio.get_running_loop().time()
        try:
            await asyncio.wait({quic}, timeout=patience)
        except asyncio.CancelledError:
            quic.cancel()  # resets the QUIC stream
            if asyncio.get_running_loop().time() - started >= self.stall_after:
                self._answered.discard(origin)  # a long silence: guard the next request
            raise
        if not quic.done():
            return await self._hedge(request, origin, quic)
        exc = quic.exception()
        if exc is None:
            return quic.result()
        if not isinstance(exc, httpx.TransportError):
            raise exc
        if not isinstance(exc, _QUIC_UNAVAILABLE) and not replayable:
            self._quic_failed(origin, exc)  # TCP answered this origin before: QUIC is to blame
            raise exc
        response = await self._via_tcp(request, origin)  # raises when TCP fails too
        self._quic_failed(origin, exc)
        return response

    async def _hedge(
        self, request: httpx.Request, origin: str, quic: asyncio.Future[httpx.Response]
    ) -> httpx.Response:
        """QUIC is silent: TCP is asked too, the first answer wins; TCP winning marks QUIC
        broken (the endpoint takes requests and answers none)."""
        tcp = asyncio.ensure_future(self._via_tcp(request, origin))
        try:
            response = await _first_answer(quic, tcp)
        finally:
            for task in (quic, tcp):
                task.cancel()
        version = response.extensions.get("http_version", b"HTTP/1.1")
        self._protocols[origin] = version.decode("ascii", "replace")
        if version != b"HTTP/3":
            self._quic_failed(origin, f"no answer within {self.stall_after:.1f} s")
        return response

    def _connect_timeout(self, request: httpx.Request) -> float:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        return timeouts.get("connect") or self.quic.connect_timeout

    def _watch(
        self, request: httpx.Request, origin: str, endpoint: Endpoint
    ) -> asyncio.Future[Any]:
        """A QUIC handshake to `endpoint` running in the background; its end decides whether
        the origin's next requests may try QUIC."""
        attempt = asyncio.ensure_future(
            self.h3.connect(
                request.url.host, endpoint, early=False, timeout=self._connect_timeout(request)
            )
        )
        self._pending[origin] = attempt
        attempt.add_done_callback(functools.partial(self._settled, origin))
        return attempt

    def _settled(self, origin: str, attempt: asyncio.Future[Any]) -> None:
        if self._pending.get(origin) is attempt:
            del self._pending[origin]
            self._slow.discard(origin)
        if attempt.cancelled():
            return
        exc = attempt.exception()
        if exc is None:
            self.altsvc.mark_working(origin)
        else:
            self._quic_failed(origin, exc)

    def _quic_failed(self, origin: str, reason: object) -> None:
        log.info("QUIC to %s failed (%s); using TCP for %.0f s", origin, reason, self.broken_for)
        self._answered.discard(origin)
        self.altsvc.mark_broken(origin, self.broken_for)

    async def _race_connections(
        self, request: httpx.Request, origin: str, endpoint: Endpoint
    ) -> httpx.Response:
        """QUIC gets `head_start` to finish its handshake; otherwise TCP carries this request
        while the handshake goes on for the next ones (a request is never sent twice)."""
        attempt = self._watch(request, origin, endpoint)
        await asyncio.wait({attempt}, timeout=self.head_start)
        if attempt.done() and not attempt.cancelled() and attempt.exception() is None:
            return await self._over_quic(request, origin, endpoint)
        return await self._via_tcp(request, origin)

    async def _race_requests(
        self, request: httpx.Request, origin: str, endpoint: Endpoint
    ) -> httpx.Response:
        """A replay-safe request leaves at once in 0-RTT. If the handshake has not finished
        within the head start, TCP sends it too and the first answer wins."""
        quic = asyncio.ensure_future(self._via_quic(request, origin, endpoint))
        try:
            await asyncio.wait({quic}, timeout=self.head_start)
        except asyncio.CancelledError:
            quic.cancel()
            raise
        if quic.done() or self.h3.connected(request.url.host, endpoint):
            return await self._over_quic(request, origin, endpoint, attempt=quic)
        if origin not in self._pending:
            self._watch(request, origin, endpoint)
        self._slow.add(origin)
        tcp = asyncio.ensure_future(self._via_tcp(request, origin))
        try:
            response = await _first_answer(quic, tcp)
            # The loser may have answered too (and been closed): status shows the winner.
            version = response.extensions.get("http_version", b"HTTP/1.1")
            self._protocols[origin] = version.decode("ascii", "replace")
            return response
        finally:
            for task in (quic, tcp):
                task.cancel()

    def snapshot(self) -> dict[str, Any]:
        """For `reaper.status`: per origin the protocol in use and, over HTTP/3, whether the
        last connection used 0-RTT and the handshake counts."""
        origins: dict[str, Any] = {}
        for origin, protocol in self._protocols.items():
            entry: dict[str, Any] = {"protocol": protocol}
            endpoint = self._endpoints.get(origin)
            if self._h3 is not None and endpoint is not None:
                host = origin.partition("://")[2].rpartition(":")[0].strip("[]")
                entry.update(self._h3.stats(host, endpoint))
            origins[origin] = entry
        return {
            "mode": self.mode,
            "origins": origins,
            **self.altsvc.snapshot(),
            "quic": self._h3.stats() if self._h3 is not None else None,
        }

    async def aclose(self) -> None:
        pending, self._pending = self._pending, {}
        for attempt in pending.values():
            attempt.cancel()
        if self._h3 is not None:
            await self._h3.aclose()
        await self.tcp.aclose()


async def _first_answer(
    quic: asyncio.Future[httpx.Response], tcp: asyncio.Future[httpx.Response]
) -> httpx.Response:
    """The first response of the two; the other is cancelled or closed. Raises the TCP error
    when both fail."""
    waiting: set[asyncio.Future[httpx.Response]] = {quic, tcp}
    while waiting:
        done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        winner = next((t for t in (quic, tcp) if t in done and _succeeded(t)), None)
        if winner is not None:
            for loser in (quic, tcp):
                if loser is not winner:
                    await _discard(loser)
            return winner.result()
    tcp.result()  # both failed: report what the TCP path said
    raise AssertionError("unreachable")  # pragma: no cover


def _succeeded(task: asyncio.Future[httpx.Response]) -> bool:
    return not task.cancelled() and task.exception() is None


async def _discard(task: asyncio.Future[httpx.Response]) -> None:
    if not task.done():
        task.cancel()  # a QUIC stream resets itself, a TCP request closes its stream
        task.add_done_callback(_retrieve)
    elif _succeeded(task):
        await task.result().aclose()


_closing: set[asyncio.Task[None]] = set()


def _retrieve(task: asyncio.Future[httpx.Response]) -> None:
    """Close the answer of a race's loser that finished despite being cancelled."""
    if task.cancelled() or task.exception() is not None:
        return
    closing = asyncio.ensure_future(task.result().aclose())
    _closing.add(closing)
    closing.add_done_callback(_closing.discard)
