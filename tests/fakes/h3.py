"""The fakes over HTTP/3: an aioquic server of our own on 127.0.0.1 UDP (trustme certificate)
that hosts the existing ASGI fakes, issues session tickets and accepts 0-RTT early data, and
records per request whether it came as early data and whether the client reset it. Knobs:
reject early data, answer 425 to it, drop the connection mid-stream. Plus `AltSvc`, which makes
an HTTP/2 fake (tests/fakes/runner.py) advertise the HTTP/3 one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tempfile
import threading
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    QuicEvent,
    StopSendingReceived,
    StreamReset,
)
from aioquic.tls import SessionTicket

from tests.fakes.asgi import Receive, Scope, Send


@dataclass
class H3Request:
    """What the HTTP/3 fake saw of one request."""

    method: str
    path: str
    early: bool
    """It arrived as 0-RTT early data (before the client finished its handshake)."""
    resumed: bool
    reset: threading.Event = field(default_factory=threading.Event)
    """The client reset the stream or asked us to stop sending."""


class Routes:
    """Dispatch to the first ASGI app whose path prefix matches (404 otherwise)."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for prefix, app in self.routes.items():
            if scope["path"].startswith(prefix):
                await app(scope, receive, send)
                return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


class AltSvc:
    """ASGI middleware adding `Alt-Svc: h3=":<port>"; ma=<max_age>` to every response."""

    def __init__(self, app: Any, port: int, max_age: int = 3600) -> None:
        self.app = app
        self.value = f'h3=":{port}"; ma={max_age}'.encode()

    @property
    def script(self) -> Any:
        return self.app.script

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def advertise(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"alt-svc", self.value)]
            await send(message)

        await self.app(scope, receive, advertise)


class _Exchange:
    """One request stream: its ASGI receive queue and what the fake recorded."""

    def __init__(self, record: H3Request) -> None:
        self.record = record
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent = 0

    def disconnect(self) -> None:
        if not self.record.reset.is_set():
            self.record.reset.set()
            self.inbox.put_nowait({"type": "http.disconnect"})


class _Server(QuicConnectionProtocol):
    def __init__(self, quic: QuicConnection, *, fake: H3FakeServer, **kwargs: Any) -> None:
        super().__init__(quic, **kwargs)
        self.fake = fake
        self.http = H3Connection(quic)
        self.handshake_done = False
        self.resumed = False
        self.exchanges: dict[int, _Exchange] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, HandshakeCompleted):
            self.handshake_done = True
            self.resumed = event.session_resumed
        elif isinstance(event, StreamReset | StopSendingReceived):
            exchange = self.exchanges.get(event.stream_id)
            if exchange is not None:
                exchange.disconnect()
        elif isinstance(event, ConnectionTerminated):
            for exchange in self.exchanges.values():
                exchange.disconnect()
        for h3_event in self.http.handle_event(event):
            if isinstance(h3_event, HeadersReceived):
                self._start(h3_event)
            elif isinstance(h3_event, DataReceived) and h3_event.stream_id in self.exchanges:
                more = not h3_event.stream_ended
                message = {"type": "http.request", "body": h3_event.data, "more_body": more}
                self.exchanges[h3_event.stream_id].inbox.put_nowait(message)

    def _start(self, event: HeadersReceived) -> None:
        fields = dict(event.headers)
        early = not self.handshake_done
        # A 0-RTT request can only be resumed; reaching here before the handshake proves both.
        record = H3Request(
            method=fields.get(b":method", b"").decode(),
            path=fields.get(b":path", b"").decode(),
            early=early,
            resumed=early or self.resumed,
        )
        self.fake.record(record)
        sid = event.stream_id
        if early and self.fake.too_early:
            self.http.send_headers(sid, [(b":status", b"425")], end_stream=True)
            self.transmit()
            return
        exchange = self.exchanges[sid] = _Exchange(record)
        if event.stream_ended:
            exchange.inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})
        path, _, query = record.path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "3",
            "method": record.method,
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [
                *[(k, v) for k, v in event.headers if not k.startswith(b":")],
                (b"host", fields.get(b":authority", b"")),
            ],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", self.fake.port),
        }
        task = asyncio.ensure_future(self._run(scope, sid, exchange))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, scope: Scope, sid: int, exchange: _Exchange) -> None:
        async def receive() -> dict[str, Any]:
            return await exchange.inbox.get()

        async def send(message: MutableMapping[str, Any]) -> None:
            if exchange.record.reset.is_set():
                return
            if message["type"] == "http.response.start":
                headers = [(b":status", str(message["status"]).encode())]
                headers += [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", [])]
                self.http.send_headers(sid, headers)
            elif message["type"] == "http.response.body":
                body = bytes(message.get("body", b""))
                self.http.send_data(sid, body, end_stream=not message.get("more_body", False))
                exchange.sent += len(body)
                drop = self.fake.drop_after_bytes
                if drop is not None and exchange.sent >= drop:
                    self.close(error_code=0x1, reason_phrase="fake dropped the connection")
            self.transmit()

        with contextlib.suppress(Exception):
            await self.fake.app(scope, receive, send)


class H3FakeServer:
    """Run `app` (ASGI) over HTTP/3 in a background thread; `with H3FakeServer(app) as fake:`."""

    def __init__(self, app: Any, ca: trustme.CA | None = None) -> None:
        self.app = app
        self.ca = ca or trustme.CA()
        self.port = 0
        self.reject_early_data = False
        """Refuse tickets, so the client's 0-RTT data is dropped and a full handshake runs."""
        self.too_early = False
        """Answer `425 Too Early` to every request that arrives as early data."""
        self.drop_after_bytes: int | None = None
        """Close the connection once a response has sent this many body bytes."""
        self.tickets_issued = 0
        self._tickets: dict[bytes, SessionTicket] = {}
        self._lock = threading.Lock()
        self._seen = threading.Condition(self._lock)
        self._requests: list[H3Request] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="reaper-h3-fake-")
        self.ca_file = str(Path(self._tmp.name) / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: QuicServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def script(self) -> Any:
        return self.app.script

    @property
    def requests(self) -> list[H3Request]:
        with self._lock:
            return list(self._requests)

    def record(self, request: H3Request) -> None:
        with self._seen:
            self._requests.append(request)
            self._seen.notify_all()

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> bool:
        with self._seen:
            return self._seen.wait_for(lambda: len(self._requests) >= n, timeout)

    def _configuration(self) -> QuicConfiguration:
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        tmp = Path(self._tmp.name)
        cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
        config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
        config.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
        return config

    def _fetch_ticket(self, label: bytes) -> SessionTicket | None:
        with self._lock:
            ticket = self._tickets.pop(label, None)
        return None if self.reject_early_data else ticket

    def _store_ticket(self, ticket: SessionTicket) -> None:
        with self._lock:
            self._tickets[ticket.ticket] = ticket
            self.tickets_issued += 1

    def start(self) -> H3FakeServer:
        config = self._configuration()
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def begin() -> None:
            self._server = await serve(
                "127.0.0.1",
                0,
                configuration=config,
                create_protocol=functools.partial(_Server, fake=self),
                session_ticket_fetcher=self._fetch_ticket,
                session_ticket_handler=self._store_ticket,
            )
            assert self._server._transport is not None
            self.port = self._server._transport.get_extra_info("sockname")[1]

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(begin())
            ready.set()
            loop.run_forever()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-h3", daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is not None and server is not None:

            def shut() -> None:
                server.close()
                loop.stop()

            loop.call_soon_threadsafe(shut)
        if self._thread is not None:
            self._thread.join(5)
        self._tmp.cleanup()

    def __enter__(self) -> H3FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_bundle(path: Path, *ca_files: str) -> str:
    """One CA file trusting every fake (the HTTP/2 and HTTP/3 fakes mint their own CAs)."""
    path.write_bytes(b"\n".join(Path(f).read_bytes() for f in ca_files))
    return str(path)
