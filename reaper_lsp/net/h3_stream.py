"""One HTTP/3 request's response as it arrives (head, body chunks, then end or an error) and
the httpx byte stream that reads it. Free of aioquic: the connection is a `StreamOwner`."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol

import httpx


class StreamOwner(Protocol):
    """What a stream needs of its QUIC connection."""

    @property
    def terminated(self) -> bool: ...

    def consumed(self, stream_id: int, size: int) -> None: ...

    def forget(self, stream: ResponseStream) -> None: ...

    def cancel_stream(self, stream_id: int) -> None: ...


class ResponseStream:
    """One request's response as it arrives: head, then body chunks, then end or an error."""

    def __init__(self, conn: StreamOwner, stream_id: int, early: bool) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.early = early
        self.head: asyncio.Future[list[tuple[bytes, bytes]]] = (
            asyncio.get_running_loop().create_future()
        )
        self.chunks: deque[bytes] = deque()
        self.ended = False
        self.error: httpx.TransportError | None = None
        self.wakeup = asyncio.Event()

    def on_headers(self, headers: list[tuple[bytes, bytes]], ended: bool) -> None:
        if not self.head.done():
            self.head.set_result(headers)
        self.on_data(b"", ended)  # later HEADERS are trailers: only their end matters

    def on_data(self, data: bytes, ended: bool) -> None:
        if data:
            self.chunks.append(data)
        if ended:
            self.ended = True
            self.conn.forget(self)
        self.wakeup.set()

    def fail(self, error: httpx.TransportError) -> None:
        if self.error is None and not self.ended:
            self.error = error
            if not self.head.done():
                self.head.set_exception(error)
            self.wakeup.set()

    async def next_chunk(self, timeout: float | None) -> bytes | None:
        """The next piece of body (None at its end), waiting at most `timeout` for it."""
        while not self.chunks:
            if self.error is not None:
                raise self.error
            if self.ended:
                return None
            self.wakeup.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self.wakeup.wait()
            except TimeoutError:
                raise httpx.ReadTimeout("no HTTP/3 data within the read timeout") from None
        chunk = self.chunks.popleft()
        self.conn.consumed(self.stream_id, len(chunk))
        return chunk

    def cancel(self) -> None:
        """Stop the server's work on this request: RESET_STREAM our side, STOP_SENDING theirs."""
        if self.ended or self.conn.terminated:
            return
        self.ended = True
        self.conn.forget(self)
        self.conn.cancel_stream(self.stream_id)


class Body(httpx.AsyncByteStream):
    """The response body as it arrives; closing it before its end resets the stream."""

    def __init__(self, stream: ResponseStream, read_timeout: float | None) -> None:
        self._stream = stream
        self._timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self._stream.next_chunk(self._timeout)) is not None:
            yield chunk

    async def aclose(self) -> None:
        self._stream.cancel()
