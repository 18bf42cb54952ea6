"""The JSON-RPC boundary: a frame reader that survives any byte stream, and a protocol that
answers every request (lifecycle errors, bad params, handler failures) without tracebacks.

pygls's own reader loses sync after one bad `Content-Length`, allocates whatever length it is
told, and drops requests whose params fail conversion without an answer; this module replaces
the reader and keeps pygls's writer and dispatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import queue
import re
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, BinaryIO

import cattrs
from lsprotocol import types as lsp
from pygls.exceptions import (
    FeatureNotificationError,
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
)
from pygls.io_ import StdoutWriter
from pygls.protocol import JsonRPCProtocol, LanguageServerProtocol
from pygls.protocol.json_rpc import MsgId, RPCMessage
from pygls.server import JsonRPCServer

from reaper_lsp.logs import redact

log = logging.getLogger(__name__)

MAX_CONTENT_LENGTH = 64 * 1024 * 1024
"""Bodies longer than this are read and dropped in chunks, never held in memory."""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_NOT_INITIALIZED = -32002
REQUEST_FAILED = -32803

CHUNK = 64 * 1024
_MAX_HEADER = 8192
_TAIL = 64  # kept while seeking, so a header split across two reads is still found
_OVERLAP = 256  # re-searched in a growing body, for the same reason
_MAX_MESSAGE = 300
# Where a frame may start. Deliberately loose: it is only a candidate, checked below.
_TOKEN = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)
# A complete header line. Valid JSON can never contain it (a raw newline is illegal inside a
# JSON string and the words are illegal outside one), so finding it inside a body proves the
# body's Content-Length was too large and the next frame has begun.
_HEADER_LINE = re.compile(rb"content-length[ \t]*:[ \t]*\d+[ \t]*\r?\n", re.IGNORECASE)
_FIELD = re.compile(rb"[!#-'*+.0-9A-Z^-z|~-]+[ \t]*:")
_SNAKE = re.compile(r"_([a-z])")
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
    """Sans-IO: `feed(bytes)` returns the events completed by those bytes, whatever they are.

    Every bad frame is skipped by searching for the next `Content-Length` header; the only
    bytes ever consumed past one are the body of a frame that parsed as JSON.
    """

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


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    line = redact(lines[0] if lines else "")
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 1] + "…"


def _answer(protocol: JsonRPCProtocol, msg_id: MsgId | None, code: int, message: str) -> None:
    # A dict, not lsprotocol's ResponseErrorMessage: that one omits `"id": null`.
    error = {"code": code, "message": _one_line(message)}
    protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "error": error})


def _valid_id(value: object) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _envelope_problem(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return "a message must be a JSON object (batches are not supported)"
    if payload.get("jsonrpc") != "2.0":
        return 'jsonrpc must be "2.0"'
    if "id" in payload and not _valid_id(payload["id"]):
        return "id must be an integer or a string"
    if "method" in payload and not isinstance(payload["method"], str):
        return "method must be a string"
    if "method" not in payload and "id" not in payload:
        return "neither a request, a notification nor a response"
    return None


def _conversion_problem(method: str, exc: BaseException, *, lsp_names: bool = True) -> str:
    """What was wrong with the params, from cattrs's errors: paths, never a traceback."""
    cause = exc.__cause__ or exc
    parts = [p.replace("$.", "") for p in cattrs.transform_error(cause)]
    if lsp_names:  # lsprotocol's attributes are the protocol's camelCase names in snake_case
        parts = [_SNAKE.sub(lambda m: m.group(1).upper(), p) for p in parts]
    pending: list[BaseException] = [cause]
    while pending:  # lsprotocol's range checks say the most: "Position.line should be in …"
        leaf = pending.pop()
        if isinstance(leaf, BaseExceptionGroup):
            pending.extend(leaf.exceptions)
        elif type(leaf) is ValueError:
            parts.append(str(leaf))
    return f"invalid params for {method}: " + "; ".join(parts)


def deliver(protocol: JsonRPCProtocol, event: Event) -> None:
    """Hand one event to pygls, answering here whatever pygls would leave unanswered."""
    if isinstance(event, Rejected):
        _answer(protocol, event.msg_id, event.code, event.message)
        return
    payload = event.payload
    problem = _envelope_problem(payload)
    if problem is not None:
        log.warning("invalid JSON-RPC message: %s", problem)
        if not isinstance(payload, dict) or "method" not in payload or "id" in payload:
            msg_id = payload.get("id") if isinstance(payload, dict) else None
            _answer(protocol, msg_id if _valid_id(msg_id) else None, INVALID_REQUEST, problem)
        return
    assert isinstance(payload, dict)
    method, msg_id = payload.get("method"), payload.get("id")
    try:
        message = protocol.structure_message(payload)
    except Exception as exc:
        text = _conversion_problem(str(method or "a response"), exc)
        log.warning("%s", redact(text))
        if method is not None and msg_id is not None:
            _answer(protocol, msg_id, INVALID_PARAMS, text)
        return
    try:
        protocol.handle_message(message)
    except BrokenPipeError:
        raise
    except Exception as exc:
        log.error("handling %s failed: %s", method, redact(_traceback_text(exc)))


def _traceback_text(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(exc))
    except MemoryError:
        return type(exc).__name__


def _user_message(label: str, exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return f"{label} failed: out of memory"
    detail = _one_line(str(exc))
    return f"{label} failed: {type(exc).__name__}" + (f": {detail}" if detail else "")


class _Phase(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    SHUT_DOWN = "shut down"


class GuardedProtocol(LanguageServerProtocol):
    """LSP lifecycle rules and clean errors on top of pygls's dispatch.

    Requests before `initialize` get -32002 and never reach a handler (they would run with
    default settings); after `shutdown`, -32600. A failing handler's answer carries a one-line
    message and no traceback (pygls's `JsonRpcInternalError.of` puts one in `data`).
    """

    def __init__(self, server: Any, converter: cattrs.Converter) -> None:
        super().__init__(server, converter)
        self._phase = _Phase.NEW
        self._labels: dict[MsgId, tuple[str, str]] = {}  # id → (method, name for messages)

    def handle_message(self, message: RPCMessage) -> None:
        method: str | None = getattr(message, "method", None)
        msg_id: MsgId | None = getattr(message, "id", None)
        if method is None:
            super().handle_message(message)
        elif msg_id is None:
            if method == lsp.EXIT or self._phase is _Phase.RUNNING:
                super().handle_message(message)
            else:
                log.debug("%s notification dropped: the server is %s", method, self._phase.value)
        elif (refusal := self._refusal(method)) is not None:
            _answer(self, msg_id, *refusal)
        else:
            if method == lsp.INITIALIZE:
                self._phase = _Phase.RUNNING
            elif method == lsp.SHUTDOWN:
                self._phase = _Phase.SHUT_DOWN
            params = getattr(message, "params", None)
            label = (
                getattr(params, "command", None)
                if method == lsp.WORKSPACE_EXECUTE_COMMAND
                else None
            )
            self._labels[msg_id] = (method, label if isinstance(label, str) else method)
            super().handle_message(message)

    def _refusal(self, method: str) -> tuple[int, str] | None:
        if self._phase is _Phase.NEW and method != lsp.INITIALIZE:
            return SERVER_NOT_INITIALIZED, f"{method}: the server is not initialized yet"
        if self._phase is _Phase.RUNNING and method == lsp.INITIALIZE:
            return INVALID_REQUEST, "initialize: the server is already initialized"
        if self._phase is _Phase.SHUT_DOWN:
            return INVALID_REQUEST, f"{method}: the server is shutting down; only exit is accepted"
        return None

    def _send_handler_result(self, future: Future[Any], *, msg_id: MsgId) -> None:
        exc = None if future.cancelled() else future.exception()
        # pygls converts command arguments itself and keeps only "Invalid Params: While
        # structuring X"; the cattrs error it replaced says which argument was wrong.
        bad_arguments = isinstance(exc, JsonRpcInvalidParams) and isinstance(
            exc.__context__, cattrs.BaseValidationError
        )
        if exc is None or (isinstance(exc, JsonRpcException) and not bad_arguments):
            super()._send_handler_result(future, msg_id=msg_id)
            return
        self._request_futures.pop(msg_id, None)
        _, label = self._labels.get(msg_id, ("", "request"))
        if bad_arguments and exc.__context__ is not None:
            error = lsp.ResponseError(
                INVALID_PARAMS, _conversion_problem(label, exc.__context__, lsp_names=False)
            )
        else:
            log.error("%s failed: %s", label, redact(_traceback_text(exc)))
            error = lsp.ResponseError(INTERNAL_ERROR, _user_message(label, exc))
        self._send_response(msg_id, error=error)

    def _send_response(
        self, msg_id: MsgId, result: Any | None = None, error: lsp.ResponseError | None = None
    ) -> None:
        method, _ = self._labels.pop(msg_id, ("", ""))
        if error is not None:
            code = error.code
            if code == INTERNAL_ERROR and method == lsp.WORKSPACE_EXECUTE_COMMAND:
                code = REQUEST_FAILED
            data = error.data
            if isinstance(data, dict) and "traceback" in data:
                data = None
            error = lsp.ResponseError(code, _one_line(error.message), data)
        super()._send_response(msg_id, result, error)

    def _check_handler_result(self, future: Future[Any]) -> None:
        exc = None if future.cancelled() else future.exception()
        if exc is None:
            return
        log.error("notification handler failed: %s", redact(_traceback_text(exc)))
        error = JsonRpcInternalError(_user_message("a notification", exc))
        self._server._report_server_error(error, FeatureNotificationError)


class _DropPyglsNoise(logging.Filter):
    """pygls logs the whole InitializeParams at INFO (initializationOptions may hold keys) and
    a traceback for every message it cannot convert (we answer those with a one-liner)."""

    DROPPED = frozenset({"Language server initialized %s", "Unable to deserialize message\n%s"})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.DROPPED


def install_log_guard() -> None:
    for name in ("pygls.protocol.language_server", "pygls.protocol.json_rpc"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropPyglsNoise) for f in logger.filters):
            logger.addFilter(_DropPyglsNoise())


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
    stop: threading.Event,
    max_length: int = MAX_CONTENT_LENGTH,
) -> None:
    """Read until end of stream (or `stop`), delivering every event to `protocol`."""
    frames = FrameReader(max_length)
    while not stop.is_set():
        data = await read()
        if not data:
            break
        for event in frames.feed(data):
            deliver(protocol, event)


def run_stdio(
    server: JsonRPCServer, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None
) -> None:
    """Serve LSP over stdin/stdout until the client exits or goes away (like `start_io`)."""
    stop = server._stop_event = threading.Event()
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    reader = _FdReader((stdin or sys.stdin.buffer).fileno())
    try:
        asyncio.run(serve_stream(reader.read, server.protocol, stop))
    except BrokenPipeError:
        log.error("the client closed the connection; shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]


def run_tcp(server: JsonRPCServer, host: str, port: int) -> None:
    """Serve one client at a time on host:port with the same reader (for debugging)."""
    stop = server._stop_event = threading.Event()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.protocol.set_writer(writer)

        async def read() -> bytes:
            return await reader.read(CHUNK)

        await serve_stream(read, server.protocol, stop)
        server.shutdown()  # type: ignore[no-untyped-call]

    async def listen() -> None:
        tcp = await asyncio.start_server(connection, host, port)
        server._server = tcp
        log.info("serving LSP on %s:%d", host, port)
        async with tcp:
            await tcp.serve_forever()

    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        asyncio.run(listen())
