"""What QUIC remembers between connections and processes: the `[http.quic]`/`[http.tls]` policy
(`QuicOptions`), TLS session tickets per endpoint (`TicketStore`, the key to 0-RTT), and the
small atomic, owner-only JSON files both kinds of state persist to.

No aioquic import at module level: AutoTransport reads the options before any QUIC is needed.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aioquic.tls import SessionTicket

log = logging.getLogger(__name__)

TICKETS_FILE = "quic-tickets.json"
EARLY_DATA = "reaper_early_data"
"""Request extension: True when the request may be replayed (completion, chat), so it may ride
in 0-RTT early data. Sign-in and token requests never set it."""


@dataclass(frozen=True, slots=True)
class QuicOptions:
    """How QUIC connections are made. TLS policy mirrors the TCP client's: verification on
    unless the user turned it off, system roots plus `cafile`."""

    verify: bool = True
    cafile: str | None = None
    min_version: str = "tls_1_2"
    """QUIC always runs TLS 1.3, which satisfies either accepted value."""
    enable_0rtt: bool = True
    max_idle_timeout: float = 300.0
    """Seconds; the connection's idle timeout is the smaller of ours and the server's."""
    keepalive_expiry: float = 300.0
    """Seconds without a request after which keep-alive PINGs stop and the connection may idle
    out (the counterpart of the TCP pool's idle timeout)."""
    receive_window: int = 1 << 20
    """Bytes a response may run ahead of its reader (per stream flow-control window)."""
    connect_timeout: float = 10.0
    """Used when a request carries no httpx timeout of its own."""
    state_dir: Path | None = None
    """Where tickets and the Alt-Svc cache persist; None keeps them in memory only."""

    def __post_init__(self) -> None:
        if self.min_version not in ("tls_1_2", "tls_1_3"):
            raise ValueError(f"unknown TLS version {self.min_version!r}")
        if self.receive_window < 16 * 1024:
            raise ValueError("receive_window must be at least 16 KiB")
        if self.max_idle_timeout <= 0:
            raise ValueError("max_idle_timeout must be positive")


@dataclass(slots=True)
class EndpointStats:
    """HTTP/3 figures for status, per endpoint and in total."""

    handshakes: int = 0
    resumed: int = 0
    early_data_sent: int = 0
    early_data_accepted: int = 0
    last_used_0rtt: bool = False

    def snapshot(self) -> dict[str, Any]:
        return {
            "handshakes": self.handshakes,
            "resumed": self.resumed,
            "earlyDataSent": self.early_data_sent,
            "earlyDataAccepted": self.early_data_accepted,
            "lastUsed0rtt": self.last_used_0rtt,
        }


def system_roots() -> str:
    """The CA bundle the TCP client trusts besides `ca_file` (certifi's). Given to aioquic as a
    file, which OpenSSL loads in C: as PEM data aioquic would parse every root in Python on
    each handshake (~40 ms here)."""
    import certifi

    return str(certifi.where())


def write_private(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data` as JSON, atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in `path`, or {} when it is missing or unreadable (state is a cache:
    losing it costs a handshake, never correctness)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.info("ignoring unreadable %s (%s)", path.name, type(exc).__name__)
        return {}
    return data if isinstance(data, dict) else {}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def encode_ticket(ticket: SessionTicket) -> dict[str, Any]:
    return {
        "age_add": ticket.age_add,
        "cipher_suite": int(ticket.cipher_suite),
        "not_valid_after": ticket.not_valid_after.timestamp(),
        "not_valid_before": ticket.not_valid_before.timestamp(),
        "resumption_secret": _b64(ticket.resumption_secret),
        "server_name": ticket.server_name,
        "ticket": _b64(ticket.ticket),
        "max_early_data_size": ticket.max_early_data_size,
        "other_extensions": [[kind, _b64(data)] for kind, data in ticket.other_extensions],
    }


def decode_ticket(data: dict[str, Any]) -> SessionTicket:
    """The ticket `data` describes; ValueError/KeyError/TypeError when it is malformed."""
    from aioquic.tls import CipherSuite, SessionTicket

    utc = datetime.UTC
    early = data.get("max_early_data_size")
    return SessionTicket(
        age_add=int(data["age_add"]),
        cipher_suite=CipherSuite(int(data["cipher_suite"])),
        not_valid_after=datetime.datetime.fromtimestamp(float(data["not_valid_after"]), utc),
        not_valid_before=datetime.datetime.fromtimestamp(float(data["not_valid_before"]), utc),
        resumption_secret=_unb64(data["resumption_secret"]),
        server_name=str(data["server_name"]),
        ticket=_unb64(data["ticket"]),
        max_early_data_size=None if early is None else int(early),
        other_extensions=[(int(kind), _unb64(raw)) for kind, raw in data["other_extensions"]],
    )


class TicketStore:
    """The newest session ticket per endpoint key, in memory and (with a directory) on disk.

    Tickets are single-use (servers forget a ticket once it is presented), so `take` removes
    it; the connection that used it receives a fresh one through `put`.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self._path = directory / TICKETS_FILE if directory is not None else None
        self._tickets: dict[str, SessionTicket] = {}
        if self._path is not None:
            self._load(self._path)

    def __len__(self) -> int:
        return len(self._tickets)

    def _load(self, path: Path) -> None:
        stored = read_json(path)
        for key, value in stored.items():
            try:
                ticket = decode_ticket(value)
            except (KeyError, TypeError, ValueError):
                continue
            if ticket.is_valid:
                self._tickets[key] = ticket
        if len(self._tickets) != len(stored):
            self._write({key: stored[key] for key in self._tickets})

    def _save(self, key: str) -> None:
        """Write this key's change into the file, keeping the keys other transports (one per
        provider, possibly in other processes) put there."""
        if self._path is None:
            return
        stored = read_json(self._path)
        ticket = self._tickets.get(key)
        if ticket is None:
            stored.pop(key, None)
        else:
            stored[key] = encode_ticket(ticket)
        self._write(stored)

    def _write(self, data: dict[str, Any]) -> None:
        assert self._path is not None
        try:
            write_private(self._path, data)
        except OSError as exc:
            log.warning("cannot save QUIC session tickets (%s)", type(exc).__name__)

    def has(self, key: str) -> bool:
        ticket = self._tickets.get(key)
        return ticket is not None and ticket.is_valid

    def take(self, key: str) -> SessionTicket | None:
        ticket = self._tickets.pop(key, None)
        if ticket is None:
            return None
        self._save(key)
        return ticket if ticket.is_valid else None

    def put(self, key: str, ticket: SessionTicket) -> None:
        self._tickets[key] = ticket
        self._save(key)
