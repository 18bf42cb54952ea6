"""Keep a provider's connection warm between bursts of typing.

APIs close an idle HTTP/2 connection after a minute or two; the first keystroke after a coffee
break would then pay DNS, TCP and TLS again. Every `INTERVAL` seconds an idle connection gets an
HTTP/2 PING (some servers count it as activity; hypercorn, for one, does not), and one idle for
longer than `RENEW_AFTER` — shorter than the usual server limits — is closed and replaced ahead
of need, so the next keystroke finds a fresh connection whatever the server's policy.

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

INTERVAL = 15.0
"""Seconds between looks at the idle connections."""
RENEW_AFTER = 45.0
"""An idle connection older than this is replaced (servers commonly close at 60-120 s)."""


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


async def close_stale(client: httpx.AsyncClient, url: str, *, idle_for: float) -> int:
    """Close the connections to `url`'s origin that have been idle longer than `idle_for`
    seconds; how many were closed (the caller opens a fresh one)."""
    import time

    origin = httpx.URL(url)
    closed = 0
    for conn in _connections(client):
        inner = getattr(conn, "_connection", None)
        try:
            if inner is None or not conn.can_handle_request(_origin(origin)):
                continue
            expire_at = getattr(inner, "_expire_at", None)
            keepalive = getattr(inner, "_keepalive_expiry", None)
            if not inner.is_idle() or expire_at is None or keepalive is None:
                continue
            if time.monotonic() - (expire_at - keepalive) < idle_for:
                continue
            await conn.aclose()
            closed += 1
        except Exception as exc:
            log.debug("closing a stale connection to %s failed: %s", origin.host, exc)
    return closed
