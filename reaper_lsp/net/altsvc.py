"""HTTP/3 discovery: parse `Alt-Svc` header values (RFC 7838), remember which origins offer h3
and at which endpoint until their `ma` runs out, and remember where QUIC failed lately so no
request waits for it again. Both memories persist next to the QUIC session tickets.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from reaper_lsp.net.h3_state import prepare_dir, read_json, read_state, write_private

ALT_SVC_FILE = "alt-svc.json"
DEFAULT_MAX_AGE = 86400.0
"""RFC 7838 §3.1: 24 hours when `ma` is absent."""
MAX_AGE_CAP = float(2**31)
"""A larger `ma` counts as this (RFC 9111 §1.2.2, delta-seconds): an origin may say "for
ever" with 400 digits, and the expiry must still be a number we can add to and store."""
MAX_BROKEN_FOR = 2 * 86400.0
"""A stored failure memory reaching further ahead than this was not written by us."""
SAVE_SLACK = 60.0
"""A refreshed expiry is written to disk only when it moved by more than this (seconds)."""

Endpoint = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Alternative:
    protocol: str
    host: str
    """Empty when the alternative is on the origin's own host."""
    port: int
    max_age: float = DEFAULT_MAX_AGE


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` outside double quotes (quoted strings may hold commas and semicolons)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner, out, i = value[1:-1], [], 0
        while i < len(inner):
            if inner[i] == "\\" and i + 1 < len(inner):
                i += 1
            out.append(inner[i])
            i += 1
        return "".join(out)
    return value


_DIGITS = re.compile(r"[0-9]+")
_REG_NAME = re.compile(r"[A-Za-z0-9._~-]+")
"""A host name or IPv4 address (RFC 3986 reg-name, less the characters no DNS name holds)."""


def _authority(text: str) -> tuple[str, int] | None:
    """`host:port`, `[ipv6]:port` or `:port` (the origin's own host); None for anything else:
    an endpoint we cannot dial must not be tried (and then remembered as broken)."""
    host, sep, port = text.rpartition(":")
    if not sep or not _DIGITS.fullmatch(port) or len(port) > 5 or not 0 < int(port) < 65536:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not _is_ipv6(host):
            return None
    elif host and not _REG_NAME.fullmatch(host):
        return None  # brackets out of place, a bare IPv6 address, spaces, userinfo, paths
    return host, int(port)


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _dialable(host: object) -> TypeGuard[str]:
    """A host an endpoint may name (as stored: IPv6 without brackets)."""
    return isinstance(host, str) and bool(_REG_NAME.fullmatch(host) or _is_ipv6(host))


def _number(value: object) -> float | None:
    """A finite JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _max_age(raw: str) -> float | None:
    """Seconds in an `ma` value (digits only), capped at MAX_AGE_CAP; None when malformed."""
    value = _unquote(raw)
    if not _DIGITS.fullmatch(value):
        return None
    # Compare lengths before converting: 400 digits must not become a 400-digit int.
    if len(value.lstrip("0")) > len(str(2**31)):
        return MAX_AGE_CAP
    return min(float(int(value)), MAX_AGE_CAP)


def parse_alt_svc(values: Iterable[str]) -> list[Alternative] | None:
    """The alternatives advertised by one response's `Alt-Svc` field values; None for `clear`.

    Malformed entries are skipped (an origin that garbles its header just gets no HTTP/3)."""
    alternatives: list[Alternative] = []
    for value in values:
        for entry in _split(value, ","):
            entry = entry.strip()
            if not entry:
                continue
            if entry.lower() == "clear":
                return None
            head, *params = _split(entry, ";")
            protocol, sep, authority = head.partition("=")
            where = _authority(_unquote(authority)) if sep else None
            if where is None:
                continue
            max_age = DEFAULT_MAX_AGE
            for param in params:
                name, _, raw = param.partition("=")
                parsed = _max_age(raw) if name.strip().lower() == "ma" else None
                if parsed is not None:
                    max_age = parsed
            alternatives.append(Alternative(protocol.strip(), where[0], where[1], max_age))
    return alternatives


@dataclass(slots=True)
class _Known:
    host: str
    port: int
    expires: float


class AltSvcCache:
    """h3 endpoints per origin (`https://host:port`) and the origins where QUIC failed lately.

    `clock` is wall time (expiries are persisted and compared across processes)."""

    def __init__(
        self, directory: Path | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._path = directory / ALT_SVC_FILE if directory is not None else None
        self._clock = clock
        self._known: dict[str, _Known] = {}
        self._broken: dict[str, float] = {}
        """origin → until when QUIC is not tried."""
        if self._path is not None:
            self._load(self._path)

    def _load(self, path: Path) -> None:
        prepare_dir(path.parent)
        stored, intact = read_state(path)
        self._known, self._broken = _decode(stored, self._clock())
        if not intact or (stored and stored != _encode(self._known, self._broken)):
            # Malformed and lapsed entries are gone for good: rewrite without them.
            with contextlib.suppress(OSError):
                write_private(path, _encode(self._known, self._broken))

    def _save(self, origin: str) -> None:
        """Write this origin's entries into the file, keeping the valid entries other
        transports (one per provider, possibly in other processes) put there."""
        if self._path is None:
            return
        h3, broken = _decode(read_json(self._path), self._clock())
        known = self._known.get(origin)
        if known is None:
            h3.pop(origin, None)
        else:
            h3[origin] = known
        if origin in self._broken:
            broken[origin] = self._broken[origin]
        else:
            broken.pop(origin, None)
        with contextlib.suppress(OSError):  # a cache: the next response teaches it again
            write_private(self._path, _encode(h3, broken))

    def learn(self, origin: str, values: Iterable[str]) -> None:
        """Take in one response's `Alt-Svc` values (none at all leaves what we knew: most
        responses repeat nothing; `clear`, or a list without h3, forgets the origin)."""
        values = list(values)
        if not values:
            return
        alternatives = parse_alt_svc(values)
        h3 = next((a for a in alternatives or [] if a.protocol == "h3"), None)
        old = self._known.get(origin)
        if h3 is None:
            if old is not None:
                del self._known[origin]
                self._save(origin)
            return
        host = h3.host or origin.rpartition("//")[2].rpartition(":")[0].strip("[]")
        known = _Known(host, h3.port, self._clock() + h3.max_age)
        self._known[origin] = known
        if (
            old is None
            or (old.host, old.port) != (known.host, known.port)
            or abs(old.expires - known.expires) > SAVE_SLACK
        ):
            self._save(origin)

    def lookup(self, origin: str) -> Endpoint | None:
        known = self._known.get(origin)
        if known is None:
            return None
        if known.expires <= self._clock():
            del self._known[origin]
            self._save(origin)
            return None
        return known.host, known.port

    def broken(self, origin: str) -> bool:
        until = self._broken.get(origin)
        if until is None:
            return False
        if until <= self._clock():
            del self._broken[origin]
            return False
        return True

    def mark_broken(self, origin: str, seconds: float) -> None:
        self._broken[origin] = self._clock() + seconds
        self._save(origin)

    def mark_working(self, origin: str) -> None:
        if self._broken.pop(origin, None) is not None:
            self._save(origin)

    def snapshot(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "h3": {o: f"{k.host}:{k.port}" for o, k in self._known.items() if k.expires > now},
            "brokenFor": {o: round(u - now) for o, u in self._broken.items() if u > now},
        }


def _decode(data: dict[str, Any], now: float) -> tuple[dict[str, _Known], dict[str, float]]:
    """The live, well-formed entries of an alt-svc file; anything else counts as absent."""
    known: dict[str, _Known] = {}
    h3 = data.get("h3")
    for origin, value in (h3 if isinstance(h3, dict) else {}).items():
        if not isinstance(value, dict):
            continue
        host, port, expires = value.get("host"), value.get("port"), _number(value.get("expires"))
        if not _dialable(host) or type(port) is not int or not 0 < port < 65536:
            continue
        if expires is not None and now < expires <= now + MAX_AGE_CAP:
            known[origin] = _Known(host, port, expires)
    broken: dict[str, float] = {}
    stored = data.get("broken")
    for origin, value in (stored if isinstance(stored, dict) else {}).items():
        until = _number(value)
        if until is not None and now < until <= now + MAX_BROKEN_FOR:
            broken[origin] = until
    return known, broken


def _encode(known: dict[str, _Known], broken: dict[str, float]) -> dict[str, Any]:
    return {
        "h3": {o: {"host": k.host, "port": k.port, "expires": k.expires} for o, k in known.items()},
        "broken": dict(broken),
    }
