"""A stand-in for `reaper-lsp daemon`, run as a script: the real listener, with a session host
that records what it receives and answers LSP requests by echoing them.

Environment: ECHO_DAEMON_RECORD (a file: one JSON line per event, received bytes included
as latin-1 text), ECHO_DAEMON_IDLE (idle timeout in seconds, default 30), ECHO_DAEMON_DELAY
(seconds to sleep before binding, to make start-up races wide), ECHO_DAEMON_HANG_ONCE (a
file: while it exists, `initialize` goes unanswered, and the file is removed).

Requests: `initialize` → capabilities; `shutdown` → null; `test/hang` → never answered;
anything else → {"echo": method, "params": params, "pid": pid}. `exit` ends the session.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time

from reaper_lsp.daemon.listener import Connection, run_daemon
from reaper_lsp.daemon.wire import encode
from reaper_lsp.lsp.frames import FrameReader, Message

RECORD = os.environ.get("ECHO_DAEMON_RECORD", "")
HANG_ONCE = os.environ.get("ECHO_DAEMON_HANG_ONCE", "")


def record(event: dict[str, object]) -> None:
    if RECORD:
        with open(RECORD, "a", encoding="utf-8") as file:
            file.write(json.dumps({"pid": os.getpid(), "t": time.monotonic(), **event}) + "\n")


def answer(message: dict[str, object], connection: Connection) -> dict[str, object] | None:
    method, params = message.get("method"), message.get("params")
    if "id" not in message or method == "test/hang":
        return None
    if method == "initialize" and HANG_ONCE and os.path.exists(HANG_ONCE):
        os.unlink(HANG_ONCE)  # this daemon never answers; the next one will
        return None
    if method == "initialize":
        info = params.get("clientInfo", {}) if isinstance(params, dict) else {}
        root = params.get("rootUri") if isinstance(params, dict) else None
        connection.describe(client=str(info.get("name", "")), root=str(root or ""))
        result: object = {"capabilities": {}, "serverInfo": {"name": "echo", "pid": os.getpid()}}
    elif method == "shutdown":
        result = None
    else:
        result = {"echo": method, "params": params, "pid": os.getpid()}
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


async def session(
    connection: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    frames = FrameReader()
    first = True
    record({"event": "session", "session": connection.number})
    while True:
        data = await reader.read(65536)
        if first and data:
            first = False
            record({"event": "first-byte", "session": connection.number})
        if not data:
            return
        record({"event": "raw", "session": connection.number, "data": data.decode("latin-1")})
        for event in frames.feed(data):
            if not isinstance(event, Message) or not isinstance(event.payload, dict):
                continue
            message = event.payload
            record({"event": "message", "session": connection.number, "message": message})
            if message.get("method") == "exit":
                return
            reply = answer(message, connection)
            if reply is not None:
                writer.write(encode(reply))
                await writer.drain()


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    time.sleep(float(os.environ.get("ECHO_DAEMON_DELAY", "0")))
    record({"event": "start"})
    code = run_daemon(session, idle_timeout=float(os.environ.get("ECHO_DAEMON_IDLE", "30")))
    record({"event": "end", "code": code})
    return code


if __name__ == "__main__":
    raise SystemExit(main())
