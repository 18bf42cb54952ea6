"""The one module that touches httpx's and httpcore's private attributes.

httpx exposes neither its connection pool, nor a PING, nor a way to cancel an HTTP/2 stream
when a response is closed early; keep-alive and stream reset need all three. Every private
name they rely on is used here and listed in `RELIES_ON`, behind small typed functions that
do nothing (return nothing found, False, None) when the shape is not what they expect, so a
changed httpcore degrades to httpx's own behaviour instead of failing a request.

Supported: httpcore 1.0.0 – 1.0.9 (`SUPPORTED`) under httpx 0.28. Every 1.0.x release has the
same shapes used here: `AsyncHTTPTransport._pool` (an `AsyncConnectionPool`, whose public
`connections` lists `AsyncHTTPConnection`s), `AsyncHTTPConnection._connection` (the
`AsyncHTTP2Connection` once negotiated), on it `_h2_state` (h2's `H2Connection`),
`_write_outgoing_data(request)` (reads only `request.extensions["timeout"]`), `_expire_at` and
`_keepalive_expiry`; and `httpcore._async.http2.HTTP2ConnectionByteStream` with `_connection`,
`_request`, `_stream_id`, `_closed` and `aclose()`. tests/unit/test_httpcore_internals.py checks
them on a real HTTP/2 connection and fails when httpcore leaves this range.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import httpcore
import httpx

log = logging.getLogger(__name__)

SUPPORTED = ((1, 0, 0), (1, 1, 0))
"""httpcore versions checked against this module: from the first, up to (not including) the
second."""
RELIES_ON: dict[str, tuple[str, ...]] = {
    "httpx.AsyncHTTPTransport": ("_pool",),
    "httpcore.AsyncConnectionPool": ("connections",),
    "httpcore.AsyncHTTPConnection": ("_connection", "can_handle_request", "is_closed",
                                     "has_expired", "is_idle", "is_available", "aclose"),
    "httpcore.AsyncHTTP2Connection": ("_h2_state", "_write_outgoing_data", "_expire_at",
                                      "_keepalive_expiry", "is_idle", "is_available"),
    "HTTP2ConnectionByteStream": ("_connection", "_request", "_stream_id", "_closed", "aclose"),
}  # fmt: skip
"""The private (and semi-private) names used here, per object kind."""


FIRST_CONNECTION_MODULES = (
    "sniffio",
    "anyio._backends._asyncio",
    "anyio._core._sockets",
    "anyio.streams.tls",
    "anyio.to_thread",
)
"""What httpcore's first connection imports, on the event loop, through anyio's lazy imports
(~25 ms, all of them private names of anyio's: a missing one is skipped)."""


def preload_first_connection() -> None:
    """Import FIRST_CONNECTION_MODULES now (meant for a thread, ahead of need): paid on the
    event loop at a process's first TCP connection, they held up a QUIC answer racing it."""
    for name in FIRST_CONNECTION_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def version_tuple(version: str) -> tuple[int, int, int]:
    """`1.0.9` → (1, 0, 9); what follows the numbers (`rc1`, `.dev0`) is ignored. (0, 0, 0) when
    the text does not start with a version."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        return (0, 0, 0)
    major, minor, micro = match.groups()
    return int(major), int(minor), int(micro or 0)


def supported(version: str = httpcore.__version__) -> bool:
    low, high = SUPPORTED
    return low <= version_tuple(version) < high


def connections(client: httpx.AsyncClient) -> list[httpcore.AsyncConnectionInterface]:
    """The connections in `client`'s TCP pool (empty when the pool cannot be found)."""
    transport = getattr(client, "_transport", None)
    return pooled(getattr(transport, "tcp", transport))  # our AutoTransport: its TCP side


def pooled(transport: object) -> list[httpcore.AsyncConnectionInterface]:
    """The connections in an `httpx.AsyncHTTPTransport`'s pool (empty when not found)."""
    pool = getattr(transport, "_pool", None)
    found = getattr(pool, "connections", None)
    return list(found) if isinstance(found, list) else []


def can_take_request(transport: object, url: httpx.URL) -> bool:
    """An `httpx.AsyncHTTPTransport` holds a connection to `url`'s origin that can carry a
    request now, with no handshake (False when that cannot be known)."""
    for conn in pooled(transport):
        try:
            if serves(conn, url) and conn.is_available():
                return True
        except Exception:  # an httpcore we do not know: nothing is known to be ready
            return False
    return False


def _origin(url: httpx.URL) -> httpcore.Origin:
    port = url.port or (443 if url.scheme == "https" else 80)
    return httpcore.Origin(url.raw_scheme, url.raw_host, port)


def serves(conn: httpcore.AsyncConnectionInterface, url: httpx.URL) -> bool:
    """`conn` is for `url`'s origin and could carry a request now (not closed or expired)."""
    try:
        usable = not conn.is_closed() and not conn.has_expired()
        return usable and conn.can_handle_request(_origin(url))
    except Exception:  # an httpcore we do not know: count nothing
        return False


def _h2(conn: httpcore.AsyncConnectionInterface) -> Any | None:
    """The HTTP/2 connection inside a pooled connection, once negotiated; else None."""
    inner = getattr(conn, "_connection", None)
    if inner is None or getattr(inner, "_h2_state", None) is None:
        return None
    if getattr(inner, "_write_outgoing_data", None) is None:
        return None
    return inner


async def ping_idle_h2(
    conn: httpcore.AsyncConnectionInterface, url: httpx.URL, *, write_timeout: float = 5.0
) -> bool:
    """Send an HTTP/2 PING on `conn` when it is an idle, usable HTTP/2 connection to `url`'s
    origin; whether one was sent. Raises what writing raised (a dead connection)."""
    inner = _h2(conn)
    if inner is None:
        return False
    try:
        ready = conn.can_handle_request(_origin(url)) and inner.is_idle() and inner.is_available()
    except Exception:
        return False
    if not ready:
        return False
    inner._h2_state.ping(os.urandom(8))
    # `_write_outgoing_data` reads only the request's timeout extension.
    request = SimpleNamespace(extensions={"timeout": {"write": write_timeout}})
    await inner._write_outgoing_data(request)
    return True


def idle_seconds(conn: httpcore.AsyncConnectionInterface, url: httpx.URL) -> float | None:
    """How long `conn` (to `url`'s origin) has been idle; None when it is busy, for another
    origin, or its idle time cannot be known."""
    inner = getattr(conn, "_connection", None)
    if inner is None:
        return None
    try:
        if not conn.can_handle_request(_origin(url)) or not inner.is_idle():
            return None
    except Exception:
        return None
    expire_at = getattr(inner, "_expire_at", None)
    keepalive = getattr(inner, "_keepalive_expiry", None)
    if not isinstance(expire_at, int | float) or not isinstance(keepalive, int | float):
        return None
    # httpcore sets `_expire_at = now + keepalive_expiry` when the connection goes idle.
    return max(0.0, time.monotonic() - (expire_at - keepalive))


CloseHook = Callable[[Any, int, Any], Awaitable[None]]
"""`hook(h2_connection, stream_id, request)`, run before httpcore closes an unfinished
HTTP/2 response."""


def on_h2_response_close(hook: CloseHook) -> bool:
    """Run `hook` whenever an HTTP/2 response is closed before httpcore closed it itself;
    whether it could be installed. The hook's failures are swallowed: closing must go on."""
    try:
        from httpcore._async.http2 import HTTP2ConnectionByteStream
    except ImportError:  # HTTP/2 support not installed, or httpcore moved it
        return False
    original = getattr(HTTP2ConnectionByteStream, "aclose", None)
    if original is None:
        log.debug("httpcore has no HTTP2ConnectionByteStream.aclose; close hook not installed")
        return False

    async def aclose(self: Any) -> None:
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                await hook(self._connection, self._stream_id, self._request)
        await original(self)

    setattr(HTTP2ConnectionByteStream, "aclose", aclose)  # noqa: B010
    return True


async def reset_h2_stream(connection: Any, stream_id: int, request: Any, error_code: int) -> None:
    """Send RST_STREAM(`error_code`) for `stream_id` when h2 still counts it open."""
    state = connection._h2_state
    stream = state.streams.get(stream_id)
    if stream is None or stream.closed:
        return
    state.reset_stream(stream_id, error_code)
    await connection._write_outgoing_data(request)
