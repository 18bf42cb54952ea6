"""The network layer's one error tree. `net` raises only these (never a provider's error):
the HTTP-provider base maps them to provider errors in one place, the way httpx maps
httpcore's exceptions."""

from __future__ import annotations

from collections.abc import Mapping


class NetError(Exception):
    """Base of every failure the network layer reports. Messages name the origin, never a
    credential."""


class ConnectFailed(NetError):
    """Nothing answered at the origin: connection refused, DNS, TLS handshake, QUIC handshake."""


class BadTLSSettings(ConnectFailed):
    """`[http.tls]` cannot be applied (a missing or unreadable `ca_file`): no connection can be
    made until the setting is fixed."""


class TimedOut(NetError):
    """Connecting, writing or reading took longer than the configured timeout."""


class ConnectionLost(NetError):
    """The connection broke after it was established (reset, closed mid-response)."""


class HTTPStatusError(NetError):
    """The server answered with a status ≥ 400; `body` is its first bytes (capped)."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes, origin: str) -> None:
        super().__init__(f"{origin} answered HTTP {status}")
        self.status = status
        self.headers = dict(headers)
        self.body = body
        self.origin = origin


class StreamTooLarge(NetError):
    """A response, one line or one event grew past its limit (a broken or hostile server)."""


class MalformedStream(NetError):
    """The response does not have the shape that was asked for (content type, framing)."""
