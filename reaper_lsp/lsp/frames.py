"""JSON-RPC framing, sans-IO: bytes in, parsed messages (or errors to answer) out, whatever
the bytes are.

A bad frame is skipped by searching for the next `Content-Length` header; the only bytes ever
consumed past one are the body of a frame that parsed as JSON, and a body over the limit is
dropped as it arrives, never held in memory.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import sys
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_CONTENT_LENGTH = 64 * 1024 * 1024
"""Bodies longer than this are read and dropped in chunks."""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

_MAX_HEADER = 8192
_TAIL = 64  # kept while seeking, so a header split across two reads is still found
_OVERLAP = 256  # re-searched in a growing body, for the same reason
# Where a frame may start. Deliberately loose: it is only a candidate, checked below.
_TOKEN = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)
# A complete header line. Valid JSON can never contain it (a raw newline is illegal inside a
# JSON string and the words are illegal outside one), so finding it inside a body proves the
# body's Content-Length was too large and the next frame has begun.
_HEADER_LINE = re.compile(rb"content-length[ \t]*:[ \t]*\d+[ \t]*\r?\n", re.IGNORECASE)
_FIELD = re.compile(rb"[!#-'*+.0-9A-Z^-z|~-]+[ \t]*:")
_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\\r\n]|\\.){0,200}")')


@dataclass(frozen=True)
class Message:
    """A frame whose body is valid JSON (not yet checked to be JSON-RPC)."""

    payload: object


@dataclass(frozen=True)
class Rejected:
    """A frame that must be answered with an error (`msg_id` None when it is unknown)."""

    code: int
    message: str
    msg_id: int | str | None


Event = Message | Rejected


class _State(enum.Enum):
    SEEK = "seek"
    BODY = "body"
    DISCARD = "discard"


class FrameReader:
    """`feed(bytes)` returns the events completed by those bytes."""

    def __init__(self, max_length: int = MAX_CONTENT_LENGTH) -> None:
        self.max_length = max_length
        self._buf = bytearray()
        self._state = _State.SEEK
        self._need = 0  # body length (BODY) or bytes still to drop (DISCARD)
        self._length = 0
        self._scanned = 0
        self._head = b""  # the start of a dropped body, to recover its id
        self._skipped = 0

    def feed(self, data: bytes) -> list[Event]:
        self._buf += data
        events: list[Event] = []
        while True:
            if self._state is _State.SEEK:
                progressed = self._seek()
            elif self._state is _State.BODY:
                progressed = self._body(events)
            else:
                progressed = self._discard(events)
            if not progressed:
                return events

    def _skip(self, n: int) -> None:
        if bytes(self._buf[:n]).strip():
            self._skipped += n
        del self._buf[:n]

    def _seek(self) -> bool:
        found = _TOKEN.search(self._buf)
        if found is None:
            if len(self._buf) > _TAIL:
                self._skip(len(self._buf) - _TAIL)
            return False
        self._skip(found.start())
        if self._skipped:
            log.warning("skipped %d bytes that were not a JSON-RPC frame", self._skipped)
            self._skipped = 0
        return self._headers(found.end() - found.start())

    def _bad_header(self, token: int, reason: str) -> bool:
        log.warning("bad JSON-RPC frame skipped: %s", reason)
        del self._buf[:token]  # only the header name: the next frame may start right after
        return True

    def _headers(self, token: int) -> bool:
        pos, length = 0, -1
        while True:
            newline = self._buf.find(b"\n", pos)
            if newline < 0 or newline > _MAX_HEADER:
                if newline < 0 and len(self._buf) <= _MAX_HEADER:
                    return False  # wait for the rest of the header block
                return self._bad_header(token, "header block too long")
            line = bytes(self._buf[pos:newline]).rstrip(b"\r")
            if pos == 0:
                value = line[token:].strip(b" \t")
                if not value.isdigit():
                    return self._bad_header(token, f"Content-Length {value[:20]!r}")
                length = int(value) if len(value) <= 20 else sys.maxsize
            elif not line:
                pos = newline + 1
                break
            elif (again := _TOKEN.search(line)) is not None:
                self._skip(pos + again.start())  # a later frame began inside this header block
                return True
            elif not _FIELD.match(line):
                return self._bad_header(token, "header block not ended by an empty line")
            pos = newline + 1
        del self._buf[:pos]
        if length == 0:
            log.warning("bad JSON-RPC frame skipped: Content-Length 0")
        elif length > self.max_length:
            log.warning("JSON-RPC frame of %d bytes is over the limit; dropping it", length)
            self._state, self._need, self._length, self._head = _State.DISCARD, length, length, b""
        else:
            self._state, self._need, self._scanned = _State.BODY, length, 0
        return True

    def _body(self, events: list[Event]) -> bool:
        start = max(0, self._scanned - _OVERLAP)
        embedded = _HEADER_LINE.search(self._buf, start, self._need + _OVERLAP)
        if embedded is not None and embedded.start() < self._need:
            end = embedded.start()
            log.warning("JSON-RPC frame shorter than its Content-Length %d", self._need)
        elif len(self._buf) >= self._need:
            end = self._need
        else:
            self._scanned = len(self._buf)
            return False
        self._state = _State.SEEK
        body = bytes(self._buf[:end])
        try:
            # Decoded here: json.loads would guess UTF-16/32 from the bytes; LSP says UTF-8.
            payload = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError, MemoryError) as exc:
            # Not consumed: the next frame may begin inside a body cut short by a wrong length.
            if body.strip():
                reason = (
                    exc.msg
                    if isinstance(exc, json.JSONDecodeError)
                    else "not UTF-8"
                    if isinstance(exc, UnicodeDecodeError)
                    else "nested too deeply or too large"
                )
                events.append(Rejected(PARSE_ERROR, f"Parse error: {reason}", _recover_id(body)))
            return True
        del self._buf[:end]
        events.append(Message(payload))
        return True

    @property
    def waiting_for_body(self) -> bool:
        return self._state is _State.BODY and len(self._buf) > 0

    def idle(self) -> list[Event]:
        """The stream paused in the middle of a body. If what came is already a whole JSON
        value, the Content-Length was too large: deliver it now rather than when the next
        message arrives (a proper prefix of a JSON object is never valid JSON)."""
        if not self.waiting_for_body:
            return []
        try:
            payload = json.loads(bytes(self._buf).decode("utf-8"))
        except (ValueError, RecursionError, MemoryError):
            return []
        log.warning("JSON-RPC frame shorter than its Content-Length %d", self._need)
        self._buf.clear()
        self._state = _State.SEEK
        return [Message(payload)]

    def _discard(self, events: list[Event]) -> bool:
        embedded = _HEADER_LINE.search(self._buf)
        if embedded is not None and embedded.start() < self._need:
            end = embedded.start()
        elif len(self._buf) >= self._need:
            end = self._need
        else:
            end = -1
        drop = end if end >= 0 else max(0, len(self._buf) - _OVERLAP)
        if len(self._head) < 4096:
            self._head += bytes(self._buf[: min(drop, 4096 - len(self._head))])
        del self._buf[:drop]
        self._need -= drop
        if end < 0:
            return False
        self._state = _State.SEEK
        text = f"message of {self._length} bytes is over the limit of {self.max_length}; skipped"
        events.append(Rejected(INVALID_REQUEST, text, _recover_id(self._head)))
        return True


def _recover_id(body: bytes) -> int | str | None:
    found = _ID.search(body[:65536])
    if found is None:
        return None
    try:
        value = json.loads(found.group(1))
    except ValueError:
        return None
    return value if isinstance(value, int | str) else None
