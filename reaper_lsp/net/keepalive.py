"""Keep a provider's connection warm between bursts of typing.

APIs close an idle HTTP/2 connection after a minute or two; the first keystroke after a coffee
break would then pay DNS, TCP and TLS again. An HTTP/2 PING on each idle connection every
`INTERVAL` seconds keeps it open (servers count a PING as activity); when no connection is left
(the server closed it anyway, or the pool let it expire), the caller re-opens one ahead of need.

httpx exposes neither its pool nor a PING: this reaches into httpcore (1.0.x), and does nothing
if its internals ever change shape — the caller then simply re-opens connections.
"""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace
from typing import Any

import httpx

log = logging.getLogger(__name__)

INTERVAL = 30.0
"""Seconds between PINGs on an idle connection (well inside the usual 60-120 s idle limits)."""


def _connections(client: httpx.AsyncClient) -> list[Any]:
    transport = getattr(client, "_transport", None)
    transport = getattr(transport, "tcp", transport)  # AutoTransport: its TCP side
    pool = getattr(transport, "_pool", None)
    found = getattr(pool, "connections", None)
    return list(found) if isinstance(found, list) else []


def open_connections(client: httpx.AsyncClient, url: str) -> int:
    """How many usable connections `client` holds to `url`'s origin."""
    origin = httpx.URL(url)
    count = 0
    for conn in _connections(client):
        try:
            if not conn.can_handle_request(_origin(origin)) or conn.is_closed():
                continue
            if conn.has_expired():
                continue
        except Exception:  # an httpcore we do not know: count nothing
            return 0
        count += 1
    return count


def _origin(url: httpx.URL) -> Any:
    import httpcore

    port = url.port or (443 if url.scheme == "https" else 80)
    return httpcore.Origin(url.raw_scheme, url.raw_host, port)


async def ping(client: httpx.AsyncClient, url: str) -> int:
    """Send a PING on every idle HTTP/2 connection to `url`'s origin; how many were pinged."""
    origin = httpx.URL(url)
    pinged = 0
    for conn in _connections(client):
        inner = getattr(conn, "_connection", None)
        state = getattr(inner, "_h2_state", None)
        write = getattr(inner, "_write_outgoing_data", None)
        if inner is None or state is None or write is None:
            continue
        try:
            if not conn.can_handle_request(_origin(origin)) or not inner.is_idle():
                continue
            if not inner.is_available():
                continue
            state.ping(os.urandom(8))
            await write(SimpleNamespace(extensions={"timeout": {"write": 5.0}}))
            pinged += 1
        except Exception as exc:  # a dead connection: the pool drops it on its next use
            log.debug("keep-alive PING to %s failed: %s", origin.host, type(exc).__name__)
    return pinged
