"""What editors run: connect stdin/stdout to the user's daemon and pass the bytes through
unchanged, restarting the daemon (and telling it the session again) if it dies.

Two threads pump the two directions; each also feeds a copy of its bytes to a FrameSplitter so
that a ClientState knows what a new daemon must be told: `initialize` (its answer swallowed
here), `initialized`, the latest configuration and every open document. Requests the dead
daemon never answered get an error answer rather than silence.

Start-up time is every editor's start-up time: this module imports neither pygls, lsprotocol,
httpx nor any of the server's layers, and no asyncio (threads cost a tenth of it). When no
daemon can be used, `run` returns a `Fallback` before reading a byte of stdin, so the caller
can serve in-process instead.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

from reaper_lsp.daemon.paths import DaemonUnavailable, read_user_config, relevant_env, resolve
from reaper_lsp.daemon.protocol import (
    HandshakeError,
    parse_answer,
    read_line,
    session_hello,
    this_process,
)
from reaper_lsp.daemon.spawn import connect_or_start
from reaper_lsp.daemon.tracker import ClientState, error_answer
from reaper_lsp.daemon.wire import FrameSplitter, encode

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping, Sequence

    from reaper_lsp.daemon.paths import DaemonPaths
    from reaper_lsp.daemon.tracker import JsonObject

CHUNK = 64 * 1024
EXIT_GRACE = 2.0
"""Seconds the daemon gets to close the connection after the client's `exit`."""
REPLAY_TIMEOUT = 30.0
MAX_RESTARTS = 5
RESTART_WINDOW = 300.0
"""More restarts than MAX_RESTARTS in this many seconds: something kills every daemon; stop."""
_HANDSHAKE_TRIES = 3


class Fallback:
    """The daemon cannot be used; serve in-process and say `reason` once in the log."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Fallback({self.reason!r})"


def run(
    stdin_fd: int = 0,
    stdout_fd: int = 1,
    *,
    env: Mapping[str, str] | None = None,
    daemon_command: Sequence[str] | None = None,
) -> int | Fallback:
    """Forward an LSP stream to the daemon until the client exits or goes away; the exit
    code (0, or 1 after `exit` without `shutdown`), or a Fallback when there is no daemon.
    `daemon_command` replaces `python -m reaper_lsp daemon` (tests start a fake)."""
    if not hasattr(socket, "AF_UNIX"):
        return Fallback("this platform has no Unix sockets")
    env = dict(os.environ if env is None else env)
    try:
        config = read_user_config(env)
        if not config.daemon_enabled:
            return Fallback(f"[daemon] enabled = false in {config.path}")
        paths = resolve(env, config=config)
        upstream = _Upstream(paths, env, relevant_env(env, config.key_variables), daemon_command)
        sock, rest = upstream.open()
    except (DaemonUnavailable, HandshakeError, OSError) as exc:
        return Fallback(str(exc) or type(exc).__name__)
    return _Forwarder(upstream, sock, rest, stdin_fd, stdout_fd).run()


class _Upstream:
    """How to reach (or start) the daemon and open a session on it."""

    def __init__(
        self,
        paths: DaemonPaths,
        env: dict[str, str],
        relevant: dict[str, str],
        command: Sequence[str] | None,
    ) -> None:
        self.paths = paths
        self._env = env
        self._relevant = relevant
        self._command = command
        self._started: list[subprocess.Popen[bytes]] = []

    def open(self) -> tuple[socket.socket, bytes]:
        """A session's socket and the bytes that came after the daemon's answer line."""
        for process in self._started:
            process.poll()  # reap a daemon we started that has since died
        for attempt in range(_HANDSHAKE_TRIES):
            sock, started = connect_or_start(self.paths, self._env, self._command)
            if started is not None:
                self._started.append(started)
            try:
                sock.sendall(session_hello(self._relevant, *this_process()))
                line, rest = read_line(sock)
            except (OSError, HandshakeError):
                # A daemon closing for idleness right as we connected: once it has removed
                # its socket, the next try starts a new one.
                sock.close()
                if attempt == _HANDSHAKE_TRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
                continue
            try:
                parse_answer(line)
            except HandshakeError:
                sock.close()
                raise
            return sock, rest
        raise HandshakeError("unreachable")


class _Forwarder:
    def __init__(
        self, upstream: _Upstream, sock: socket.socket, rest: bytes, stdin_fd: int, stdout_fd: int
    ) -> None:
        self._upstream = upstream
        self._sock = sock
        self._rest = rest
        self._in, self._out = stdin_fd, stdout_fd
        # Lock order: _send_lock, then _lock. _send_lock keeps client bytes after a replay;
        # _lock guards the state, which the daemon pump also updates, without waiting for a
        # send to finish.
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._out_lock = threading.Lock()
        self._done = threading.Event()
        self._code = 0
        self._state = ClientState()
        self._from_client = FrameSplitter()
        self._from_daemon = FrameSplitter()
        self._gone = False
        """The daemon ended after `shutdown`: answer for it until `exit`."""
        self._restarts: list[float] = []
        self._tracking = True

    def run(self) -> int:
        for target in (self._pump_client, self._pump_daemon):
            threading.Thread(target=target, name=target.__name__, daemon=True).start()
        self._done.wait()
        _close(self._sock)
        return self._code

    def _finish(self, code: int) -> None:
        if not self._done.is_set():
            self._code = code
            self._done.set()

    def _exit_code(self) -> int:
        return 0 if self._state.shutdown else 1

    # -- client -> daemon ------------------------------------------------------------------------

    def _pump_client(self) -> None:
        first = True
        while True:
            try:
                data = os.read(self._in, CHUNK)
            except OSError:
                data = b""
            if not data:
                self._finish(0)
                return
            with self._send_lock:
                if not self._gone and not _send(self._sock, data):
                    # The daemon pump sees the end and restarts; the state keeps what this
                    # chunk meant, for the replay.
                    _close(self._sock)
                with self._lock:
                    self._observe_client(data)
            if first:
                first = False
                threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
            if self._state.exit:
                if self._gone or not self._done.wait(EXIT_GRACE):
                    self._finish(self._exit_code())
                return

    def _observe_client(self, data: bytes) -> None:
        for _end, message in self._from_client.feed(data):
            if message is not None and self._tracking:
                try:
                    self._state.from_client(message)
                except Exception as exc:  # a tracker bug must never cost the editor its server
                    self._tracking = False
                    _say(f"cannot follow the session ({exc!r}); a daemon restart will lose it")
        if self._gone:
            self._answer_unanswered()

    # -- daemon -> client ------------------------------------------------------------------------

    def _pump_daemon(self) -> None:
        data, self._rest = self._rest, b""
        while True:
            if data:
                if not self._write(data):
                    self._finish(0)  # the editor went away
                    return
                with self._lock:
                    self._observe_daemon(data)
            try:
                data = self._sock.recv(CHUNK)
            except OSError:
                data = b""
            if not data and not self._recover():
                return

    def _observe_daemon(self, data: bytes) -> list[tuple[int, JsonObject | None]]:
        frames = self._from_daemon.feed(data)
        for _end, message in frames:
            if message is not None and self._tracking:
                self._state.from_daemon(message)
        return frames

    def _write(self, data: bytes) -> bool:
        view = memoryview(data)
        with self._out_lock:
            try:
                while view:
                    view = view[os.write(self._out, view) :]
            except OSError:
                return False
        return True

    # -- the daemon went away --------------------------------------------------------------------

    def _recover(self) -> bool:
        """After the daemon's end of the socket closed: whether a new daemon took over."""
        with self._send_lock, self._lock:
            if self._done.is_set() or self._state.exit:
                self._finish(self._exit_code())
                return False
            self._sock.close()
            # A frame the dead daemon left half-written would swallow the editor's next ones.
            self._write(self._from_daemon.padding())
            self._from_daemon = FrameSplitter()
            if self._state.shutdown:
                self._gone = True
                self._answer_unanswered()
                return False
            if not self._may_restart() or not self._tracking:
                self._answer_unanswered()
                _say("the daemon keeps going away; giving up")
                self._finish(1)
                return False
            self._answer_unanswered(replaying=True)
            _say("the daemon went away; starting a new one and replaying the session")
            try:
                self._sock, rest = self._upstream.open()
                self._replay(rest)
            except (DaemonUnavailable, HandshakeError, OSError) as exc:
                _say(f"cannot restart the daemon: {exc}")
                self._answer_unanswered()
                self._finish(1)
                return False
            return True

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW]
        self._restarts.append(now)
        return len(self._restarts) <= MAX_RESTARTS

    def _answer_unanswered(self, *, replaying: bool = False) -> None:
        for msg_id, method in self._state.take_unanswered(keep_initialize=replaying):
            if method == "shutdown" and self._gone:
                answer: JsonObject = {"jsonrpc": "2.0", "id": msg_id, "result": None}
            else:
                answer = error_answer(msg_id)
            self._write(encode(answer))

    def _replay(self, rest: bytes) -> None:
        """Tell the new daemon what the client told the old one, in the client's order."""
        initialize = self._state.replay_initialize()
        self._sock.settimeout(REPLAY_TIMEOUT)
        if initialize is not None:
            self._sock.sendall(encode(initialize))
            self._await_answer(initialize.get("id"), rest, self._state.initialize_answered)
            for message in self._state.replay_rest():
                self._sock.sendall(encode(message))
        elif rest:
            self._write(rest)
            self._observe_daemon(rest)
        # The daemon that died got the first part of this frame; the new one needs all of it.
        self._sock.sendall(self._from_client.partial)
        self._sock.settimeout(None)

    def _await_answer(self, msg_id: object, data: bytes, swallow: bool) -> None:
        """Pass the new daemon's output on until the answer to the replayed `initialize`,
        which the client already has when `swallow`; whole frames only, until then."""
        held = b""
        key = json.dumps(msg_id)
        while True:
            cut = 0
            for end, message in self._observe_daemon(data):
                segment, held, cut = held + data[cut:end], b"", end
                if message is not None and _answers(message, key):
                    if not swallow:
                        self._write(segment)
                    self._write(data[end:])  # the rest streams as usual
                    return
                self._write(segment)
            held += data[cut:]
            data = self._sock.recv(CHUNK)
            if not data:
                raise OSError("the new daemon closed the connection during the replay")


def _answers(message: JsonObject, key: str) -> bool:
    return "method" not in message and json.dumps(message.get("id")) == key


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


def _close(sock: socket.socket) -> None:
    # shutdown() first: close() alone does not wake the other pump blocked in recv().
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        sock.close()  # never connected or already closed: nothing to wake
        return
    sock.close()


def _warm_up() -> None:
    # The document store is needed at the first didOpen; importing it now, off the path of
    # the first bytes, keeps that didOpen from waiting for it.
    import reaper_lsp.core.document  # noqa: F401


def _say(text: str) -> None:
    """One line for the editor's server log (the forwarder's stderr)."""
    try:
        sys.stderr.write(f"reaper-lsp: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
