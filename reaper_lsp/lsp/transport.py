"""Serving one editor connection: bytes in through our frame reader (`frames.py`) to the
protocol, until the editor sends `exit` or goes away; then the session is closed. Over stdio
(what editors start), a TCP port (debugging), or any byte stream (a daemon's socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from pygls.io_ import StdoutWriter
from pygls.protocol import JsonRPCProtocol

from reaper_lsp.lsp.frames import MAX_CONTENT_LENGTH, FrameReader
from reaper_lsp.lsp.rpc import deliver

if TYPE_CHECKING:
    from reaper_lsp.lsp.server import ReaperServer

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
IDLE_SECONDS = 0.5


class _FdReader:
    """Reads on a daemon thread, one read per request, so a client that goes quiet after
    `exit` cannot keep the process alive (pygls's executor threads are joined at exit)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._requests: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[bytes]]]
        self._requests = queue.SimpleQueue()
        threading.Thread(target=self._run, name="lsp-stdin", daemon=True).start()

    async def read(self) -> bytes:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._requests.put((loop, future))
        return await future

    def _run(self) -> None:
        while True:
            loop, future = self._requests.get()
            try:
                data = os.read(self._fd, CHUNK)
            except OSError:
                data = b""
            try:
                loop.call_soon_threadsafe(_settle, future, data)
            except RuntimeError:  # the loop has closed: the server is gone
                return


def _settle(future: asyncio.Future[bytes], data: bytes) -> None:
    if not future.done():
        future.set_result(data)


async def serve_stream(
    read: Callable[[], Awaitable[bytes]],
    protocol: JsonRPCProtocol,
    stop: asyncio.Event,
    max_length: int = MAX_CONTENT_LENGTH,
) -> None:
    """Read until end of stream (or `stop`), delivering every event to `protocol`."""
    frames = FrameReader(max_length)
    reading: asyncio.Future[bytes] | None = None
    stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            reading = reading or asyncio.ensure_future(read())
            # A body that stops short may be a whole message under a too-large Content-Length.
            pause = IDLE_SECONDS if frames.waiting_for_body else None
            pending: set[asyncio.Future[Any]] = {reading, stopped}
            done, _ = await asyncio.wait(
                pending, timeout=pause, return_when=asyncio.FIRST_COMPLETED
            )
            if stopped in done:
                break
            if not done:
                events = frames.idle()
            else:
                data, reading = reading.result(), None
                if not data:
                    break
                events = frames.feed(data)
            for event in events:
                deliver(protocol, event)
    finally:
        stopped.cancel()
        if reading is not None:
            reading.cancel()


async def serve(server: ReaperServer, read: Callable[[], Awaitable[bytes]]) -> int:
    """Serve one connection until `exit` or the end of its stream, then close its session;
    the exit status LSP asks for (0 after `shutdown`, else 1)."""
    try:
        await serve_stream(read, server.protocol, server.stopping)
    finally:
        await server.close()
    return server.exit_code


def run_stdio(
    server: ReaperServer, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None
) -> int:
    """Serve LSP over stdin/stdout until the client exits or goes away; the exit status."""
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    reader = _FdReader((stdin or sys.stdin.buffer).fileno())
    try:
        return asyncio.run(serve(server, reader.read))
    except BrokenPipeError:
        log.error("the client closed the connection; shutting down")
        return 1
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]


def run_tcp(server: ReaperServer, host: str, port: int) -> int:
    """Serve one client on host:port with the same reader (for debugging); the server ends
    with that client's connection."""
    done = asyncio.Event()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.protocol.set_writer(writer)

        async def read() -> bytes:
            return await reader.read(CHUNK)

        try:
            await serve(server, read)
        finally:
            writer.close()
            done.set()

    async def listen() -> None:
        tcp = await asyncio.start_server(connection, host, port)
        log.info("serving LSP on %s:%d", host, port)
        async with tcp:
            await done.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(listen())
    server.shutdown()  # type: ignore[no-untyped-call]
    return server.exit_code
