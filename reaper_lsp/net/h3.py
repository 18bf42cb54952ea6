"""An httpx transport speaking HTTP/3 over QUIC (aioquic): one connection per endpoint carrying
many request streams, streamed bodies, cancellation that resets the stream, keep-alive PINGs,
session resumption and 0-RTT early data for requests marked safe, and every failure raised as
the httpx exception the TCP transport would raise.

aioquic is imported only here and in `h3_conn.py`; this module is imported when QUIC is first
needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
import warnings
from typing import Any

import httpx
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from aioquic.tls import SessionTicket

from reaper_lsp.net.h3_conn import Connection, FlowControlledQuic
from reaper_lsp.net.h3_state import (
    EARLY_DATA,
    EndpointStats,
    QuicOptions,
    TicketStore,
    replay_safe,
    system_roots,
)
from reaper_lsp.net.h3_stream import Body, ResponseStream

log = logging.getLogger(__name__)
# certifi's bundle holds a root with a negative serial; cryptography warns each time aioquic
# parses it (once per handshake when a `cafile` is added to the roots).
warnings.filterwarnings("ignore", message="Parsed a serial number", module="aioquic.tls")

Endpoint = tuple[str, int]
TOO_EARLY = 425


class H3Transport(httpx.AsyncBaseTransport):
    """HTTP/3 for httpx. `send(request, endpoint)` dials an alternative endpoint (from Alt-Svc)
    while the request keeps its origin's authority and TLS server name."""

    def __init__(self, options: QuicOptions | None = None, *, tickets: TicketStore | None = None):
        self.options = options or QuicOptions()
        if tickets is None:
            tickets = TicketStore(self.options.state_dir, background=True)
        self.tickets = tickets
        self.total = EndpointStats()
        self.endpoints: dict[str, EndpointStats] = {}
        self._connections: dict[str, Connection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._opening_early: set[str] = set()
        """Connections being opened (not yet in `_connections`) that will take early data."""
        self._keepalives: set[asyncio.Task[None]] = set()
        self._trust: bytes | None = None

    @property
    def handshakes(self) -> int:
        return self.total.handshakes

    @property
    def resumed(self) -> int:
        return self.total.resumed

    @property
    def early_data_sent(self) -> int:
        return self.total.early_data_sent

    @property
    def early_data_accepted(self) -> int:
        return self.total.early_data_accepted

    @property
    def last_used_0rtt(self) -> bool:
        return self.total.last_used_0rtt

    @staticmethod
    def key(server_name: str, endpoint: Endpoint) -> str:
        return f"{server_name}@{endpoint[0]}:{endpoint[1]}"

    def connected(self, server_name: str, endpoint: Endpoint) -> bool:
        """A live connection to `endpoint` has finished its handshake."""
        conn = self._connections.get(self.key(server_name, endpoint))
        return conn is not None and not conn.terminated and conn.handshake_done

    def early_pending(self, server_name: str, endpoint: Endpoint) -> bool:
        """A handshake to `endpoint` is under way on a connection that takes early data (it
        started with a ticket), so a request marked safe can join it at once."""
        key = self.key(server_name, endpoint)
        conn = self._connections.get(key)
        if conn is None or conn.terminated:
            # Its ticket is taken already, so a request must join it rather than start its own.
            return key in self._opening_early
        return not conn.handshake_done and conn.zero_rtt

    def can_send_early(self, server_name: str, endpoint: Endpoint) -> bool:
        """A request marked safe could leave at once in 0-RTT (we hold a ticket for it)."""
        return self.options.enable_0rtt and self.tickets.has(self.key(server_name, endpoint))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        return await self.send(request, (request.url.host, port))

    async def send(self, request: httpx.Request, endpoint: Endpoint) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        connect_timeout = timeouts.get("connect") or self.options.connect_timeout
        read_timeout = timeouts.get("read")
        early_ok = replay_safe(request) and self.options.enable_0rtt
        body = await request.aread()
        conn = await self.connect(request.url.host, endpoint, early=early_ok,
                                  timeout=connect_timeout)  # fmt: skip
        stream = conn.open_stream(request, body, early=not conn.handshake_done)
        if stream.early:
            self.total.early_data_sent += 1
            self._stats(conn.key).early_data_sent += 1
        status, headers = await self._head(stream, read_timeout)
        if status == TOO_EARLY and stream.early:
            # RFC 8470: the server wants this request after the handshake; ask once more.
            stream.cancel()
            await self._wait_handshake(conn, connect_timeout)
            stream = conn.open_stream(request, body, early=False)
            status, headers = await self._head(stream, read_timeout)
        return httpx.Response(
            status,
            headers=headers,
            stream=Body(stream, read_timeout),
            extensions={"http_version": b"HTTP/3", EARLY_DATA: stream.early},
        )

    async def _head(
        self, stream: ResponseStream, timeout: float | None
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        try:
            async with asyncio.timeout(timeout):
                raw = await asyncio.shield(stream.head)
        except TimeoutError:
            stream.cancel()
            raise httpx.ReadTimeout("no HTTP/3 response within the read timeout") from None
        except BaseException:
            stream.cancel()
            raise
        fields = dict(raw)
        try:
            status = int(fields[b":status"])
        except (KeyError, ValueError):
            stream.cancel()
            raise httpx.RemoteProtocolError("HTTP/3 response without a valid :status") from None
        return status, [(k, v) for k, v in raw if not k.startswith(b":")]

    async def connect(
        self, server_name: str, endpoint: Endpoint, *, early: bool, timeout: float
    ) -> Connection:
        """A connection to `endpoint` ready for the next request: handshake done, or (when
        `early` and a ticket allows it) still under way with early data possible."""
        key = self.key(server_name, endpoint)
        conn = self._connections.get(key)
        if conn is None or conn.terminated:
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:
                conn = self._connections.get(key)
                if conn is None or conn.terminated:
                    conn = await self._open(server_name, endpoint, key, timeout)
                    self._connections[key] = conn
        if not conn.handshake_done and not (early and conn.zero_rtt):
            await self._wait_handshake(conn, timeout)
        return conn

    async def _wait_handshake(self, conn: Connection, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(conn.handshake)
        except TimeoutError:
            conn.abort("handshake timed out")
            raise httpx.ConnectTimeout("QUIC handshake timed out") from None

    async def _open(
        self, server_name: str, endpoint: Endpoint, key: str, timeout: float
    ) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            family, addr = _literal(*endpoint) or await _resolve(loop, *endpoint)
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {endpoint[0]}: {exc}") from None
        try:
            sock.setblocking(False)
            sock.connect(addr)  # connected, so ICMP errors are reported to us
            quic = FlowControlledQuic(
                window=self.options.receive_window,
                configuration=self._configuration(server_name, key),
                session_ticket_handler=lambda ticket: self._ticket(key, ticket),
            )
            ticket = quic.configuration.session_ticket
            zero_rtt = (
                self.options.enable_0rtt
                and ticket is not None
                and ticket.max_early_data_size is not None
            )
            if zero_rtt:
                self._opening_early.add(key)
            _, protocol = await loop.create_datagram_endpoint(
                lambda: Connection(quic, key, self._handshake_completed), sock=sock
            )
        except OSError as exc:
            sock.close()
            raise httpx.ConnectError(f"cannot reach {endpoint[0]}:{endpoint[1]}: {exc}") from None
        finally:
            self._opening_early.discard(key)
        assert isinstance(protocol, Connection)
        protocol.zero_rtt = zero_rtt
        # Hold the first flight back one tick: a 0-RTT request sent right now joins it.
        protocol.connect(addr, transmit=False)
        loop.call_soon(protocol.transmit)
        # Bounds the handshake even when nobody waits for it (a 0-RTT request, a race lost).
        loop.call_later(timeout, self._give_up, protocol)
        task = loop.create_task(self._keepalive(protocol))
        self._keepalives.add(task)
        task.add_done_callback(self._keepalives.discard)
        return protocol

    def _configuration(self, server_name: str, key: str) -> QuicConfiguration:
        config = QuicConfiguration(
            is_client=True,
            alpn_protocols=H3_ALPN,
            idle_timeout=self.options.max_idle_timeout,
            max_stream_data=self.options.receive_window,
            server_name=server_name,
        )
        if not self.options.verify:
            config.verify_mode = ssl.CERT_NONE
        elif self.options.cafile:
            # The system roots plus `cafile`, as for TCP (given only a cafile, aioquic would
            # trust nothing else).
            if self._trust is None:
                with open(self.options.cafile, "rb") as extra:
                    self._trust = extra.read()
            config.cafile = system_roots()
            config.cadata = self._trust
        config.session_ticket = self.tickets.take(key)
        return config

    @staticmethod
    def _give_up(conn: Connection) -> None:
        if not conn.handshake.done():
            conn.abort("QUIC handshake timed out")

    def _ticket(self, key: str, ticket: SessionTicket) -> None:
        self.tickets.put(key, ticket)

    def _stats(self, key: str) -> EndpointStats:
        stats = self.endpoints.get(key)
        if stats is None:
            stats = self.endpoints[key] = EndpointStats()
        return stats

    def _handshake_completed(self, conn: Connection) -> None:
        event = conn.handshake.result()
        used = conn.sent_early and event.early_data_accepted
        # Rejected early data is not lost: QUIC resends those frames at 1-RTT by itself.
        for stats in (self.total, self._stats(conn.key)):
            stats.handshakes += 1
            stats.resumed += int(event.session_resumed)
            stats.early_data_accepted += int(used)
            stats.last_used_0rtt = used

    async def _keepalive(self, conn: Connection) -> None:
        """PING at a third of the idle timeout while the connection is in use or was used
        recently, so it survives the pauses between keystrokes."""
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(conn.idle_timeout() / 3)
                if conn.terminated:
                    return
                idle = time.monotonic() - conn.last_used
                if not conn.streams and idle > self.options.keepalive_expiry:
                    return  # let it idle out; the next request resumes with a ticket
                conn.keepalive()

    def stats(
        self, server_name: str | None = None, endpoint: Endpoint | None = None
    ) -> dict[str, Any]:
        """Totals, or one endpoint's figures when it is named."""
        if server_name is not None and endpoint is not None:
            return self._stats(self.key(server_name, endpoint)).snapshot()
        return {
            **self.total.snapshot(),
            "connections": sum(1 for c in self._connections.values() if not c.terminated),
        }

    async def aclose(self) -> None:
        connections, self._connections = self._connections, {}
        for conn in connections.values():
            conn.abort("client closed")
        for task in list(self._keepalives):
            task.cancel()
        await self.tickets.flushed()
        await asyncio.sleep(0)


def _literal(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]] | None:
    """An address written as one (Alt-Svc may name one): resolving it would still cost a trip
    through the executor's thread before the first flight leaves."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family, (host, port) if family == socket.AF_INET else (host, port, 0, 0)
    return None


async def _resolve(
    loop: asyncio.AbstractEventLoop, host: str, port: int
) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    family, _, _, _, addr = infos[0]
    return family, addr
