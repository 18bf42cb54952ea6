"""Incremental decoders for streamed responses: Server-Sent Events (OpenAI, Anthropic, Copilot)
and newline-delimited JSON (Ollama).

Both split raw bytes on CR/LF only. `str.splitlines` (and so `httpx.Response.iter_lines`) also
splits on U+2028, U+0085, VT, FF …, which may legally appear inside a JSON string and would cut
an event in half. UTF-8 is decoded per complete line, so a character split across network
chunks is never mangled. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from reaper_lsp.net.errors import StreamTooLarge

__all__ = ["NDJSONDecoder", "SSEDecoder", "SSEEvent", "StreamTooLarge"]

MAX_LINE_BYTES = 4 * 1024 * 1024
BOM = b"\xef\xbb\xbf"


class _LineSplitter:
    """Splits a byte stream into lines on CRLF, LF or lone CR, holding a trailing CR until the
    next byte shows whether it starts a CRLF."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._buffer = bytearray()
        self._pending_cr = False
        self._max_line = max_line

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        if self._pending_cr:
            self._pending_cr = False
            if data[:1] == b"\n":
                data = data[1:]
        buffer = self._buffer
        start = 0
        length = len(data)
        while start < length:
            lf = data.find(b"\n", start)
            cr = data.find(b"\r", start, lf if lf >= 0 else length)
            if cr >= 0:
                end, step = cr, 1
                if cr + 1 < length:
                    if data[cr + 1 : cr + 2] == b"\n":
                        step = 2
                else:
                    self._pending_cr = True
            elif lf >= 0:
                end, step = lf, 1
            else:
                buffer += data[start:]
                if len(buffer) > self._max_line:
                    raise StreamTooLarge(f"line longer than {self._max_line} bytes")
                return
            if buffer:
                buffer += data[start:end]
                line = bytes(buffer)
                buffer.clear()
            else:
                line = data[start:end]
            if len(line) > self._max_line:
                raise StreamTooLarge(f"line longer than {self._max_line} bytes")
            yield line
            start = end + step

    def close(self) -> bytes | None:
        """The unterminated last line, if any."""
        self._pending_cr = False
        if not self._buffer:
            return None
        line = bytes(self._buffer)
        self._buffer.clear()
        return line


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str
    data: str
    id: str
    retry: int | None = None


class SSEDecoder:
    """The WHATWG event-stream algorithm: comments, multi-line data, `event`, `id`, `retry`,
    one leading BOM, and an unterminated final event discarded."""

    def __init__(self, max_event: int = MAX_LINE_BYTES) -> None:
        self._lines = _LineSplitter(max_event)
        self._max_event = max_event
        self._started = False
        self._head = b""
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        self._last_id = ""
        self._retry: int | None = None

    def feed(self, data: bytes) -> Iterator[SSEEvent]:
        if not self._started:
            self._head += data
            if len(self._head) < len(BOM) and BOM.startswith(self._head):
                return  # maybe a BOM arriving a byte at a time
            data = self._head[len(BOM) :] if self._head.startswith(BOM) else self._head
            self._head = b""
            self._started = True
        for raw in self._lines.feed(data):
            event = self._line(raw)
            if event is not None:
                yield event

    def close(self) -> None:
        """End of stream: an event without its blank line is discarded, per the spec."""
        if not self._started and self._head:
            self._started = True
            self._lines.feed(self._head)
        self._lines.close()
        self._event, self._data, self._size = "", [], 0

    def _line(self, raw: bytes) -> SSEEvent | None:
        if not raw:
            return self._dispatch()
        if raw[:1] == b":":
            return None
        line = raw.decode("utf-8", errors="replace")
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._size += len(raw)
            if self._size > self._max_event:
                raise StreamTooLarge(f"event larger than {self._max_event} bytes")
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event = self._data, self._event
        self._data, self._event, self._size = [], "", 0
        if not data:
            return None
        return SSEEvent(event or "message", "\n".join(data), self._last_id, self._retry)


class NDJSONDecoder:
    """Newline-delimited JSON: yields each non-blank line as text (parsing is the caller's)."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._lines = _LineSplitter(max_line)

    def feed(self, data: bytes) -> Iterator[str]:
        for raw in self._lines.feed(data):
            if raw.strip():
                yield raw.decode("utf-8", errors="replace")

    def close(self) -> list[str]:
        rest = self._lines.close()
        if rest is None or not rest.strip():
            return []
        return [rest.decode("utf-8", errors="replace")]
