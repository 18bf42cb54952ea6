"""A tiny ASGI toolkit shared by the fakes: read and record a request, then answer it with
scripted timing, streaming, garbage or a held-open stream, noticing when the client leaves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from tests.fakes.script import Recorded, Reply, Script

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

HOLD_OPEN_LIMIT = 30.0


async def read_request(scope: Scope, receive: Receive, script: Script) -> Recorded:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    raw = b"".join(parts)
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    client = scope.get("client")
    recorded = Recorded(
        method=scope["method"],
        path=scope["path"],
        headers=headers,
        body=body,
        raw=raw,
        http_version=scope.get("http_version", ""),
        client=tuple(client) if client else None,
    )
    warm_up = recorded.method == "HEAD" or (
        recorded.method == "GET" and recorded.path.endswith(("/models", "/health"))
    )
    if warm_up:
        script.prewarms += 1  # connection warm-ups are not API calls
    else:
        script.record(recorded)
    return recorded


def encode_body(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()


async def send_json(
    send: Send, status: int, value: Any, recorded: Recorded, headers: dict[str, str] | None = None
) -> None:
    body = encode_body(value)
    all_headers = {"content-type": "application/json", **(headers or {})}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": body})
    recorded.completed.set()


def pieces(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or []


def hostile(data: bytes) -> list[bytes]:
    """Split bytes into 1-3 byte chunks, so CRLF and UTF-8 sequences straddle chunks."""
    out, i, step = [], 0, 1
    while i < len(data):
        out.append(data[i : i + step])
        i += step
        step = step % 3 + 1
    return out


async def stream(
    receive: Receive,
    send: Send,
    reply: Reply,
    recorded: Recorded,
    content_type: str,
    events: Iterable[bytes],
    *,
    error_event: bytes | None = None,
    ending: int = 1,
) -> None:
    """Send `events` (already framed) with the reply's timing; watch for the client leaving.

    The last `ending` events finish the stream: `hold_open` withholds them, and `error_event`
    replaces them (and the text's second half) when `reply.error_mid_stream` is set.
    """
    left = asyncio.Event()

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                left.set()
                recorded.disconnected.set()
                return

    watcher = asyncio.ensure_future(watch())
    try:
        if reply.first_byte_delay:
            await _sleep_unless(left, reply.first_byte_delay)
        headers = {"content-type": content_type, "cache-control": "no-cache", **reply.headers}
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        body = list(events)
        if reply.garbage:
            body = [os.urandom(64), b"\x00\xff<html>not a stream</html>\n\n", os.urandom(32)]
        elif reply.hold_open:
            body = body[: len(body) - ending]
        elif reply.error_mid_stream and error_event is not None:
            body = [*body[: max(1, len(body) // 2)], error_event]
        if reply.hostile_chunks:
            body = hostile(b"".join(body))
        for chunk in body:
            if left.is_set():
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if reply.chunk_delay:
                await _sleep_unless(left, reply.chunk_delay)
        if reply.hold_open:
            await _sleep_unless(left, HOLD_OPEN_LIMIT)
            if left.is_set():
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if not left.is_set():
            recorded.completed.set()
    except (OSError, RuntimeError, asyncio.CancelledError):
        recorded.disconnected.set()
        raise
    finally:
        watcher.cancel()


async def _sleep_unless(left: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(left.wait(), seconds)


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def bearer(headers: dict[str, str]) -> str:
    value = headers.get("authorization", "")
    return value[7:] if value.lower().startswith("bearer ") else ""
