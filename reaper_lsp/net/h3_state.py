"""What QUIC remembers between connections and processes: the `[http.quic]`/`[http.tls]` policy
(`QuicOptions`), TLS session tickets per endpoint (`TicketStore`, the key to 0-RTT), and the
small atomic, owner-only JSON files both kinds of state persist to.

No aioquic import at module level: AutoTransport reads the options before any QUIC is needed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reaper_lsp.workspace import checked_state_file, private_dir, read_regular_file

if TYPE_CHECKING:
    import httpx
    from aioquic.tls import SessionTicket

log = logging.getLogger(__name__)

TICKETS_FILE = "quic-tickets.json"
MAX_STATE_BYTES = 1 << 20
"""A state file larger than this is not ours (a few tickets and endpoints take kilobytes)."""
EARLY_DATA = "reaper_early_data"
"""Request extension: True when the request may be replayed (completion, chat), so it may ride
in 0-RTT early data. Sign-in and token requests never set it."""
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def replay_safe(request: httpx.Request) -> bool:
    """Sending `request` twice harms nothing, so it may ride in 0-RTT early data and be
    raced over TCP: marked so (`EARLY_DATA`: completions and chats; never sign-in or token
    requests), or a safe method (RFC 9110 §9.2.1, RFC 8470 §2: warm-ups)."""
    return bool(request.extensions.get(EARLY_DATA)) or request.method in _SAFE_METHODS


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


def prepare_dir(directory: Path) -> None:
    """Make an existing state folder private (0700, with its parents of ours) before anything
    in it is read; a missing one is created on the first write."""
    if directory.exists():
        try:
            private_dir(directory)
        except OSError as exc:
            log.warning("cannot make %s private (%s)", directory, type(exc).__name__)


def write_private(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data` as JSON, atomically, readable by the owner only, in a folder
    only the owner can enter."""
    private_dir(path.parent)
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


def read_state(path: Path) -> tuple[dict[str, Any], bool]:
    """The JSON object in `path`, and whether the file may stay as it is. A missing file is
    ({}, True); one that cannot be used — unreadable, not a JSON object, too large, refused
    (someone else's, or writable by others) — is ({}, False), for the caller to rewrite: state
    is a cache, losing it costs a handshake, never correctness."""
    try:
        if checked_state_file(path) is None:
            return {}, not os.path.lexists(path)
    except OSError as exc:
        log.info("ignoring unreadable %s (%s)", path.name, type(exc).__name__)
        return {}, False
    raw = read_regular_file(path, MAX_STATE_BYTES, whole=True)
    if raw is None:
        if not os.path.lexists(path):
            return {}, True
        log.info("ignoring %s: unreadable or larger than %d bytes", path.name, MAX_STATE_BYTES)
        return {}, False
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        log.info("ignoring unreadable %s (%s)", path.name, type(exc).__name__)
        return {}, False
    if not isinstance(data, dict):
        log.info("ignoring %s: it holds a JSON %s, not an object", path.name, type(data).__name__)
        return {}, False
    return data, True


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in `path`, or {} when it is missing or cannot be used (`read_state`)."""
    return read_state(path)[0]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, limit: int = 1 << 16) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    data = base64.b64decode(text.encode("ascii"), validate=True)
    if len(data) >= limit:
        raise ValueError("longer than a TLS field holds")
    return data


def _uint(value: object, bits: int) -> int:
    # bool is an int subclass, and JSON's 1e400 arrives as a float: neither is a field value.
    if type(value) is not int or not 0 <= value < 1 << bits:
        raise ValueError(f"not an unsigned {bits}-bit integer")
    return value


def _instant(value: object) -> datetime.datetime:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("not a finite timestamp")
    try:
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    except (OverflowError, OSError) as exc:  # beyond what a datetime or time_t holds
        raise ValueError(str(exc)) from None


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


def decode_ticket(data: object) -> SessionTicket:
    """The ticket `data` describes; ValueError when it is malformed — any type, range or shape
    a ticket written by `encode_ticket` cannot have."""
    from aioquic.tls import CipherSuite, SessionTicket

    if not isinstance(data, dict):
        raise ValueError("a ticket is a JSON object")
    try:
        early = data.get("max_early_data_size")
        extensions = data["other_extensions"]
        if not isinstance(extensions, list) or not all(
            isinstance(item, list) and len(item) == 2 for item in extensions
        ):
            raise ValueError("other_extensions is a list of [type, data] pairs")
        server_name = data["server_name"]
        if not isinstance(server_name, str):
            raise ValueError("server_name is text")
        return SessionTicket(
            age_add=_uint(data["age_add"], 32),
            cipher_suite=CipherSuite(_uint(data["cipher_suite"], 16)),
            not_valid_after=_instant(data["not_valid_after"]),
            not_valid_before=_instant(data["not_valid_before"]),
            resumption_secret=_unb64(data["resumption_secret"], 256),
            server_name=server_name,
            ticket=_unb64(data["ticket"]),
            max_early_data_size=None if early is None else _uint(early, 32),
            other_extensions=[(_uint(kind, 16), _unb64(raw)) for kind, raw in extensions],
        )
    except KeyError as exc:
        raise ValueError(f"missing {exc}") from None


def _valid_tickets(stored: dict[str, Any]) -> dict[str, SessionTicket]:
    """The entries of a tickets file that decode to tickets still valid."""
    tickets: dict[str, SessionTicket] = {}
    for key, value in stored.items():
        try:
            ticket = decode_ticket(value)
        except ValueError:
            continue
        if ticket.is_valid:
            tickets[key] = ticket
    return tickets


class _Writer:
    """One thread that applies state-file updates in the order they were handed over, so the
    event loop never waits for a disk (an fsync under load takes milliseconds, and the first
    flight of a 0-RTT connection would wait for it)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, update: Callable[[], None]) -> Future[None]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="reaper-quic-state")
            return self._pool.submit(update)


_WRITER = _Writer()
"""Shared by every store of the process: stores of one directory (one per provider) merge
their changes into the same file, so their writes must not interleave."""


class TicketStore:
    """The newest session ticket per endpoint key, in memory and (with a directory) on disk.

    Tickets are single-use (servers forget a ticket once it is presented), so `take` removes
    it; the connection that used it receives a fresh one through `put`. With `background`,
    the file is written by a thread of its own after `take` and `put` return (`flushed()`
    waits for it); memory is the truth within the process either way.
    """

    def __init__(self, directory: Path | None = None, *, background: bool = False) -> None:
        self._path = directory / TICKETS_FILE if directory is not None else None
        self._tickets: dict[str, SessionTicket] = {}
        self._background = background
        self._pending: set[Future[None]] = set()
        if self._path is not None:
            self._load(self._path)

    def __len__(self) -> int:
        return len(self._tickets)

    def _load(self, path: Path) -> None:
        prepare_dir(path.parent)
        stored, intact = read_state(path)
        self._tickets = _valid_tickets(stored)
        if not intact or len(self._tickets) != len(stored):
            # Malformed and expired entries are gone for good: rewrite without them.
            self._write({key: stored[key] for key in self._tickets})

    def _save(self, key: str) -> None:
        if self._path is None:
            return
        ticket = self._tickets.get(key)
        if not self._background:
            self._store(key, ticket)
            return
        future = _WRITER.submit(lambda: self._store(key, ticket))
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def _store(self, key: str, ticket: SessionTicket | None) -> None:
        """Write this key's change into the file, keeping the valid tickets other transports
        (one per provider, possibly in other processes) put there."""
        assert self._path is not None
        stored = read_json(self._path)
        kept = {k: stored[k] for k in _valid_tickets(stored) if k != key}
        if ticket is not None:
            kept[key] = encode_ticket(ticket)
        self._write(kept)

    def _write(self, data: dict[str, Any]) -> None:
        assert self._path is not None
        try:
            write_private(self._path, data)
        except OSError as exc:
            log.warning("cannot save QUIC session tickets (%s)", type(exc).__name__)

    async def flushed(self) -> None:
        """Wait until what `take` and `put` changed is on disk."""
        pending = [asyncio.wrap_future(f) for f in list(self._pending)]
        await asyncio.gather(*pending, return_exceptions=True)

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
