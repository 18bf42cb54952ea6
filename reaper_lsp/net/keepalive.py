"""Keep a provider's connection warm between bursts of typing.

APIs close an idle HTTP/2 connection after a minute or two; the first keystroke after a coffee
break would then pay DNS, TCP and TLS again. Every `INTERVAL` seconds an idle connection gets an
HTTP/2 PING (some servers count it as activity; hypercorn, for one, does not), and one idle for
longer than `RENEW_AFTER` — shorter than the usual server limits — is closed and replaced ahead
of need, so the next keystroke finds a fresh connection whatever the server's policy.

httpx exposes neither its pool nor a PING: `httpcore_internals` reaches them, and finds nothing
if httpcore ever changes shape — the caller then simply re-opens connections.
"""

from __future__ import annotations

import logging

import httpx

from reaper_lsp.net import httpcore_internals as internals

log = logging.getLogger(__name__)

INTERVAL = 15.0
"""Seconds between looks at the idle connections."""
RENEW_AFTER = 45.0
"""An idle connection older than this is replaced (servers commonly close at 60-120 s)."""


def open_connections(client: httpx.AsyncClient, url: str) -> int:
    """How many usable connections `client` holds to `url`'s origin."""
    origin = httpx.URL(url)
    return sum(1 for conn in internals.connections(client) if internals.serves(conn, origin))


async def ping(client: httpx.AsyncClient, url: str) -> int:
    """Send a PING on every idle HTTP/2 connection to `url`'s origin; how many were pinged."""
    origin = httpx.URL(url)
    pinged = 0
    for conn in internals.connections(client):
        try:
            pinged += await internals.ping_idle_h2(conn, origin)
        except Exception as exc:  # a dead connection: the pool drops it on its next use
            log.debug("keep-alive PING to %s failed: %s", origin.host, type(exc).__name__)
    return pinged


async def close_stale(client: httpx.AsyncClient, url: str, *, idle_for: float) -> int:
    """Close the connections to `url`'s origin that have been idle longer than `idle_for`
    seconds; how many were closed (the caller opens a fresh one)."""
    origin = httpx.URL(url)
    closed = 0
    for conn in internals.connections(client):
        idle = internals.idle_seconds(conn, origin)
        if idle is None or idle < idle_for:
            continue
        try:
            await conn.aclose()
        except Exception as exc:
            log.debug("closing a stale connection to %s failed: %s", origin.host, exc)
            continue
        closed += 1
    return closed
