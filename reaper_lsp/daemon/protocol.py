"""The handshake in front of the LSP stream: one JSON line each way, size-capped and read with
a timeout, then the socket carries LSP frames untouched.

forwarder → daemon::

    {"reaper-lsp": 1, "kind": "session", "env": {...}, "cwd": "/project", "pid": 4242}
    {"reaper-lsp": 1, "kind": "control", "command": "status" | "sessions" | "stop"}

daemon → forwarder::

    {"ok": true, "session": 3, "pid": 999, "version": "0.1.0"}      (a session starts)
    {"ok": true, "pid": 999, ...the command's result...}            (a control command)
    {"ok": false, "error": "why not"}

`env` holds the variables paths.relevant_env names, API keys among them: it is never logged
and never shown by `repr`.
"""

from __future__ import annotations

import json
import os
import socket
import time

from reaper_lsp.daemon.paths import resolve, socket_exists

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

VERSION = 1
MAX_LINE = 64 * 1024
"""Bytes; a handshake line is a few hundred, env values included."""
TIMEOUT = 5.0
"""Seconds either side waits for the other's line."""
SESSION = "session"
CONTROL = "control"
COMMANDS = ("status", "sessions", "stop")


class HandshakeError(Exception):
    """The other side's line is missing, too long, not ours, or says no."""


class Hello:
    """A forwarder's (or a control client's) first line, checked."""

    __slots__ = ("command", "cwd", "env", "kind", "pid")

    def __init__(
        self,
        kind: str,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str = "",
        pid: int = 0,
        command: str = "",
    ) -> None:
        self.kind = kind
        self.env: dict[str, str] = dict(env or {})
        self.cwd = cwd
        self.pid = pid
        self.command = command

    def __repr__(self) -> str:
        # Names only: the values are credentials.
        return (
            f"Hello(kind={self.kind!r}, pid={self.pid}, cwd={self.cwd!r}, "
            f"command={self.command!r}, env_names={sorted(self.env)!r})"
        )


def encode(message: Mapping[str, object]) -> bytes:
    line = json.dumps(message, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    if len(line) >= MAX_LINE:
        raise HandshakeError(f"handshake line of {len(line)} bytes is over {MAX_LINE}")
    return line + b"\n"


def session_hello(env: Mapping[str, str], cwd: str, pid: int) -> bytes:
    return encode(
        {"reaper-lsp": VERSION, "kind": SESSION, "env": dict(env), "cwd": cwd, "pid": pid}
    )


def control_hello(command: str) -> bytes:
    return encode({"reaper-lsp": VERSION, "kind": CONTROL, "command": command})


def _decode(line: bytes) -> dict[str, object]:
    try:
        message = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise HandshakeError("the handshake line is not JSON") from exc
    if not isinstance(message, dict):
        raise HandshakeError("the handshake line is not a JSON object")
    return message


def parse_hello(line: bytes) -> Hello:
    """The daemon's reading of a first line; HandshakeError says (to the sender) why not."""
    message = _decode(line)
    if message.get("reaper-lsp") != VERSION:
        raise HandshakeError(f"unsupported handshake version {message.get('reaper-lsp')!r}")
    kind = message.get("kind")
    if kind == CONTROL:
        command = message.get("command")
        if command not in COMMANDS:
            raise HandshakeError(f"unknown control command {command!r}")
        return Hello(CONTROL, command=str(command))
    if kind != SESSION:
        raise HandshakeError(f"unknown handshake kind {kind!r}")
    env, cwd, pid = message.get("env"), message.get("cwd", ""), message.get("pid", 0)
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise HandshakeError("env must map names to strings")
    if not isinstance(cwd, str) or not isinstance(pid, int) or isinstance(pid, bool):
        raise HandshakeError("cwd must be a string and pid an integer")
    return Hello(SESSION, env=env, cwd=cwd, pid=pid)


def parse_answer(line: bytes) -> dict[str, object]:
    """The forwarder's reading of the daemon's line: the answer when `ok`, else raises."""
    message = _decode(line)
    if message.get("ok") is not True:
        raise HandshakeError(str(message.get("error") or "the daemon refused the connection"))
    return message


def ok(**fields: object) -> bytes:
    return encode({"ok": True, **fields})


def refusal(error: str) -> bytes:
    return encode({"ok": False, "error": error})


def read_line(sock: socket.socket, timeout: float = TIMEOUT) -> tuple[bytes, bytes]:
    """One line from a blocking socket: (the line without its newline, what came after it)."""
    deadline = time.monotonic() + timeout
    buffer = b""
    try:
        while b"\n" not in buffer:
            if len(buffer) >= MAX_LINE:
                raise HandshakeError("the handshake line is too long")
            left = deadline - time.monotonic()
            if left <= 0:
                raise HandshakeError("no handshake answer in time")
            sock.settimeout(left)
            chunk = sock.recv(MAX_LINE)
            if not chunk:
                raise HandshakeError("the connection closed during the handshake")
            buffer += chunk
    except OSError as exc:  # socket.timeout included
        raise HandshakeError(f"handshake failed: {exc or 'timed out'}") from exc
    finally:
        sock.settimeout(None)
    line, _, rest = buffer.partition(b"\n")
    return line, rest


def control(socket_path: str, command: str, timeout: float = TIMEOUT) -> dict[str, object]:
    """Ask a running daemon `command` (status, sessions, stop). Raises OSError when nobody
    listens, DaemonUnavailable when the socket is not ours, HandshakeError when the daemon
    says no."""
    if not socket_exists(socket_path):
        raise FileNotFoundError(f"no daemon socket at {socket_path}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(control_hello(command))
        line, _ = read_line(sock, timeout)
    return parse_answer(line)


def ask(command: str, env: Mapping[str, str] | None = None) -> dict[str, object]:
    """The answer of the daemon serving `env` (default: ours) to `command`, for
    `reaper-lsp daemon status|stop|sessions`. FileNotFoundError / ConnectionRefusedError:
    no daemon runs."""
    return control(resolve(os.environ if env is None else env).socket, command)


def this_process() -> tuple[str, int]:
    """(cwd, pid) for a session hello; a deleted cwd is sent as ""."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    return cwd, os.getpid()
