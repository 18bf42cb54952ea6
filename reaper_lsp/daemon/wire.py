"""Where LSP frames begin and end in a byte stream the forwarder passes on unchanged, sans-IO.

The forwarder never re-frames: it forwards each chunk as it comes and feeds a copy here, to
learn what went by (requests in flight, open documents). It needs exact byte offsets for
three things the server's FrameReader (frames.py) does not report — it consumes headers and
hands out only messages: cutting the replayed `initialize`'s answer out of a daemon's output,
resending to a restarted daemon the part of a client frame its predecessor got, and padding a
frame a dying daemon left half-written so the editor's reader stays in step.

Tolerant like FrameReader: anything that is not a frame is skipped (the receiver's reader
deals with it), a body cut short by a later header is given up at that header, and a body over
the limit is counted through, never held.
"""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    JsonObject = dict[str, object]

MAX_LENGTH = 64 * 1024 * 1024
"""Bodies longer than this are passed on but not parsed (the server drops them too)."""
_MAX_HEADER = 8192
_TAIL = 64  # kept while seeking, so a header split across two chunks is still found
_OVERLAP = 256  # re-searched in a growing body, for the same reason
_TOKEN = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)
_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*(\d{1,20})[ \t]*\r?\n", re.IGNORECASE)
_BLANK = re.compile(rb"\n\r?\n")
# A whole header line inside a body proves the body's Content-Length was too large: valid JSON
# cannot contain a raw newline inside a string, nor these words outside one.
_HEADER_LINE = re.compile(rb"content-length[ \t]*:[ \t]*\d+[ \t]*\r?\n", re.IGNORECASE)

_SEEK, _BODY, _DISCARD = 0, 1, 2


def encode(message: JsonObject) -> bytes:
    """A frame for a message the forwarder writes itself (replays, error answers)."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


_INVALID = object()


def _parse(body: bytes) -> object:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return _INVALID


class FrameSplitter:
    """`feed(chunk)` returns `(end, message)` for each frame the chunk completes: `end` is the
    offset in `chunk` just past the frame, `message` its body when that is a JSON object."""

    def __init__(self, max_length: int = MAX_LENGTH) -> None:
        self.max_length = max_length
        self._buf = bytearray()  # the current frame from its header on, or seek leftovers
        self._origin = 0  # offset of _buf[0] in the chunk being fed
        self._state = _SEEK
        self._body = 0  # where the body starts in _buf
        self._need = 0  # body length (BODY) or bytes still to count through (DISCARD)
        self._scanned = 0

    def feed(self, chunk: bytes) -> list[tuple[int, JsonObject | None]]:
        frames: list[tuple[int, JsonObject | None]] = []
        self._origin = -len(self._buf)
        if self._state == _DISCARD:
            taken = min(self._need, len(chunk))
            self._need -= taken
            if self._need:
                return frames
            frames.append((taken, None))
            self._state, self._origin = _SEEK, taken
            chunk = chunk[taken:]
        self._buf += chunk
        while self._step(frames):
            pass
        return frames

    def _drop(self, n: int) -> None:
        del self._buf[:n]
        self._origin += n

    def _step(self, frames: list[tuple[int, JsonObject | None]]) -> bool:
        if self._state == _BODY:
            return self._body_step(frames)
        found = _TOKEN.search(self._buf)
        if found is None:
            self._drop(max(0, len(self._buf) - _TAIL))
            return False
        self._drop(found.start())
        blank = _BLANK.search(self._buf, 0, _MAX_HEADER)
        if blank is None:
            if len(self._buf) < _MAX_HEADER:
                return False  # the header block is still coming
            self._drop(found.end() - found.start())
            return True
        length = _LENGTH.match(self._buf)
        if length is None or length.end() > blank.end():
            self._drop(found.end() - found.start())  # not a frame; a later one may follow
            return True
        size = int(length.group(1))
        self._body, self._scanned = blank.end(), 0
        if size > self.max_length:
            self._drop(self._body)
            self._state, self._need = _DISCARD, size
            taken = min(size, len(self._buf))
            self._need -= taken
            self._drop(taken)
            if self._need == 0:
                frames.append((self._origin, None))
                self._state = _SEEK
            return self._state == _SEEK
        self._state, self._need = _BODY, size
        return True

    def _body_step(self, frames: list[tuple[int, JsonObject | None]]) -> bool:
        start = self._body + max(0, self._scanned - _OVERLAP)
        limit = self._body + self._need
        embedded = _HEADER_LINE.search(self._buf, start, limit + _OVERLAP)
        if embedded is not None and embedded.start() < limit:
            end, message = embedded.start(), None  # cut short: the next frame began
        elif len(self._buf) >= limit:
            parsed = _parse(bytes(self._buf[self._body : limit]))
            if parsed is _INVALID:
                # Not consumed, like FrameReader: a body made too long by a wrong length may
                # hold the start of the next frame.
                end, message = self._body, None
            else:
                end, message = limit, parsed if isinstance(parsed, dict) else None
        else:
            self._scanned = len(self._buf) - self._body
            return False
        frames.append((self._origin + end, message))
        self._drop(end)
        self._state = _SEEK
        return True

    @property
    def partial(self) -> bytes:
        """The bytes of a frame begun but not finished (b"" between frames)."""
        return bytes(self._buf) if self._state == _BODY or _TOKEN.match(self._buf) else b""

    def padding(self) -> bytes:
        """What completes the unfinished frame for a reader that got `partial` (spaces: the
        body then fails to parse, and the reader drops that one message, in step)."""
        if self._state == _BODY:
            return b" " * (self._body + self._need - len(self._buf))
        return b""
