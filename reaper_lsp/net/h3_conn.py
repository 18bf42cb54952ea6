"""One HTTP/3 connection on aioquic: a QUIC connection whose receive credit follows the
reader (flow control), and the protocol object that routes its events to request streams and
turns its failures into httpx exceptions. Imported only by `h3.py`, when QUIC is first needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import httpx
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.connection import MAX_STREAM_DATA_FRAME_CAPACITY, QuicConnection
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, QuicEvent, StreamReset
from aioquic.quic.packet import QuicFrameType
from aioquic.quic.packet_builder import QuicPacketBuilder
from aioquic.quic.recovery import QuicPacketSpace
from aioquic.quic.stream import QuicStream
from aioquic.tls import Group

from reaper_lsp.net.h3_stream import ResponseStream

_HOP_BY_HOP = {b"connection", b"host", b"keep-alive", b"proxy-connection", b"te",
               b"transfer-encoding", b"upgrade"}  # fmt: skip
_Fail = Callable[[str], httpx.TransportError]
KEY_SHARE_GROUPS = (Group.X25519, Group.SECP256R1)
"""The groups a ClientHello offers key shares for, as browsers do. aioquic would add P-384
and X448, whose keys cost the first flight of every connection ~1.5 ms more; TLS 1.3 servers
must take P-256 (RFC 8446 §9.1) and take X25519 in practice."""


class FlowControlledQuic(QuicConnection):
    """QUIC whose receive credit on request streams follows the reader: an unread response
    stops its sender one window ahead. (aioquic itself grants credit as data arrives.) Its
    ClientHello offers only the KEY_SHARE_GROUPS."""

    def __init__(self, *, window: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.window = window
        self.consumed: dict[int, int] = {}
        """Request stream → body bytes the reader has taken."""

    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        groups = getattr(self.tls, "_supported_groups", None)
        if isinstance(groups, list) and set(KEY_SHARE_GROUPS) & set(groups):
            # Another aioquic may name this differently: then it keeps its own groups.
            groups[:] = [group for group in groups if group in KEY_SHARE_GROUPS]

    def _write_stream_limits(
        self, builder: QuicPacketBuilder, space: QuicPacketSpace, stream: QuicStream
    ) -> None:
        stream_id = stream.stream_id
        consumed = None if stream_id is None else self.consumed.get(stream_id)
        if stream_id is None or consumed is None:
            super()._write_stream_limits(builder, space, stream)
            return
        sent = stream.max_stream_data_local_sent
        limit = max(stream.max_stream_data_local, consumed + self.window)
        if sent and limit - sent < self.window // 2:
            return  # not worth a frame yet
        stream.max_stream_data_local = limit
        if limit == sent:
            return
        buf = builder.start_frame(
            QuicFrameType.MAX_STREAM_DATA,
            capacity=MAX_STREAM_DATA_FRAME_CAPACITY,
            handler=self._on_max_stream_data_delivery,
            handler_args=(stream,),
        )
        buf.push_uint_var(stream_id)
        buf.push_uint_var(limit)
        stream.max_stream_data_local_sent = limit


class Connection(QuicConnectionProtocol):
    """One QUIC connection and its HTTP/3 layer; routes events to the open streams."""

    def __init__(
        self, quic: FlowControlledQuic, key: str, on_handshake: Callable[[Connection], None]
    ) -> None:
        super().__init__(quic)
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.quic = quic
        self.http = H3Connection(quic)
        self.streams: dict[int, ResponseStream] = {}
        self.handshake: asyncio.Future[HandshakeCompleted] = self.loop.create_future()
        self.handshake.add_done_callback(lambda f: f.exception())  # no "never retrieved"
        self.zero_rtt = False
        """Started with a ticket that allows early data (and 0-RTT is enabled)."""
        self.sent_early = False
        self.terminated = False
        self.last_used = time.monotonic()
        self._on_handshake = on_handshake

    @property
    def handshake_done(self) -> bool:
        return self.handshake.done() and self.handshake.exception() is None

    def idle_timeout(self) -> float:
        remote = self.quic._remote_max_idle_timeout
        local = self.quic.configuration.idle_timeout
        return min(local, remote) if remote else local

    def open_stream(self, request: httpx.Request, body: bytes, *, early: bool) -> ResponseStream:
        if self.terminated:  # closed while the caller waited: nothing was sent
            raise httpx.ConnectError("QUIC connection closed before the request was sent")
        stream_id = self.quic.get_next_available_stream_id()
        stream = self.streams[stream_id] = ResponseStream(self, stream_id, early)
        self.quic.consumed[stream_id] = 0
        url = request.url
        headers = [
            (b":method", request.method.encode()),
            (b":scheme", url.scheme.encode()),
            (b":authority", url.netloc),
            (b":path", url.raw_path),
        ]
        headers += [(k.lower(), v) for k, v in request.headers.raw if k.lower() not in _HOP_BY_HOP]
        self.http.send_headers(stream_id, headers, end_stream=not body)
        if body:
            self.http.send_data(stream_id, body, end_stream=True)
        if early:
            self.sent_early = True
        self.last_used = time.monotonic()
        self.transmit()
        return stream

    def cancel_stream(self, stream_id: int) -> None:
        """RESET_STREAM our side and STOP_SENDING theirs, so the server stops working on it."""
        with contextlib.suppress(ValueError, AssertionError):
            self.quic.reset_stream(stream_id, ErrorCode.H3_REQUEST_CANCELLED)
            self.quic.stop_stream(stream_id, ErrorCode.H3_REQUEST_CANCELLED)
        self.transmit()

    def consumed(self, stream_id: int, size: int) -> None:
        """The reader took `size` bytes: once that frees half a window, grant more credit."""
        taken = self.quic.consumed.get(stream_id)
        if taken is not None:
            self.quic.consumed[stream_id] = taken + size
            half = self.quic.window // 2
            if (taken + size) // half > taken // half:
                self.transmit()

    def forget(self, stream: ResponseStream) -> None:
        self.quic.consumed.pop(stream.stream_id, None)
        self.streams.pop(stream.stream_id, None)
        self.last_used = time.monotonic()

    def keepalive(self) -> None:
        self.quic.send_ping(0)
        self.transmit()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, HandshakeCompleted):
            if not self.handshake.done():
                self.handshake.set_result(event)
                self._on_handshake(self)
        elif isinstance(event, ConnectionTerminated):
            reason = event.reason_phrase or f"error {event.error_code:#x}"
            self._terminate(f"QUIC connection closed: {reason}")
            return
        elif isinstance(event, StreamReset) and event.stream_id in self.streams:
            error = httpx.RemoteProtocolError(
                f"server reset the stream (error {event.error_code:#x})"
            )
            self.streams[event.stream_id].fail(error)
        for h3_event in self.http.handle_event(event):
            self._dispatch(h3_event)

    def _dispatch(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.on_headers(list(event.headers), event.stream_ended)
        elif isinstance(event, DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.on_data(event.data, event.stream_ended)

    def error_received(self, exc: Exception) -> None:
        # The socket is connected, so ICMP "port unreachable" arrives here at once instead of
        # the handshake waiting out its timeout.
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        self._terminate(f"QUIC endpoint unreachable: {reason}")

    def abort(self, reason: str) -> None:
        """Close now: tell the peer if we can, but do not wait out the draining period."""
        if not self.terminated:
            with contextlib.suppress(Exception):
                self.close(error_code=ErrorCode.H3_NO_ERROR, reason_phrase=reason)
        self._terminate(reason)

    def _terminate(self, reason: str) -> None:
        if self.terminated:
            return
        self.terminated = True
        handshake_failed = not self.handshake.done()
        fail: _Fail = httpx.ConnectError if handshake_failed else httpx.ReadError
        if handshake_failed:
            self.handshake.set_exception(fail(reason))
        for stream in list(self.streams.values()):
            stream.fail(fail(reason))
        self.streams.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()
        self._closed.set()
