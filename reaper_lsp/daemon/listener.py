"""The daemon's side of the socket, agnostic of LSP: bind it where only we can reach it,
check each peer's uid, read the handshake, and hand every session to the session host in its
own task; answer control commands; exit when idle, stopped or terminated, removing the socket
only while it is still ours.

The session host plugs in as `on_session(connection, reader, writer)`: it serves LSP on the
streams, and may `connection.describe(client=..., root=...)` for `reaper-lsp daemon sessions`.
A session's exception is logged and ends that connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import Any

from reaper_lsp import __version__
from reaper_lsp.daemon import protocol
from reaper_lsp.daemon.paths import (
    DaemonPaths,
    DaemonUnavailable,
    ensure_directory,
    env_key,
    read_user_config,
    relevant_env,
    resolve,
    socket_exists,
)
from reaper_lsp.daemon.protocol import HandshakeError, Hello
from reaper_lsp.daemon.spawn import READY_FD_ENV
from reaper_lsp.logs import register_secret

log = logging.getLogger(__name__)

STARTUP_IDLE = 5.0
"""Seconds at least before a fresh daemon nobody connected to exits: the forwarder that
started it needs time to connect, even with `idle_timeout = 0`."""
CHECK_INTERVAL = 30.0
"""How often an idle-waiting daemon checks that its socket is still its own."""
STOP_GRACE = 2.0


class DaemonRunning(Exception):
    """Another daemon already listens on our socket."""


class Connection:
    """One editor connection, as `reaper-lsp daemon sessions` lists it."""

    def __init__(self, number: int, hello: Hello) -> None:
        self.number = number
        self.hello = hello
        self.started = time.time()
        self.client = ""
        self.root = hello.cwd

    def describe(self, *, client: str | None = None, root: str | None = None) -> None:
        """What the session host learnt at `initialize` (clientInfo, the workspace root)."""
        if client is not None:
            self.client = client
        if root is not None:
            self.root = root

    def as_dict(self) -> dict[str, object]:
        return {
            "session": self.number,
            "client": self.client,
            "root": self.root,
            "pid": self.hello.pid,
            "since": round(self.started, 3),
        }


SessionHandler = Callable[[Connection, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
ControlHandler = Callable[[str], Awaitable[Mapping[str, object]]]
"""Extra fields for a control command's answer (the App's own figures for `status`)."""


def peer_uid(sock: socket.socket) -> int | None:
    """The connecting process's uid, or None where the platform cannot tell (then the 0700
    directory and 0600 socket are the only guard)."""
    if hasattr(socket, "SO_PEERCRED"):  # Linux
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return int(struct.unpack("3i", creds)[1])
    local_peercred = getattr(socket, "LOCAL_PEERCRED", None)  # macOS, FreeBSD
    if local_peercred is not None:
        # struct xucred {u_int cr_version; uid_t cr_uid; short cr_ngroups; gid_t cr_groups[16]}
        creds = sock.getsockopt(0, local_peercred, struct.calcsize("IIh16I"))
        return int(struct.unpack_from("II", creds)[1])
    return None


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # the peak, not the current
        return peak if sys.platform == "darwin" else peak * 1024


def bind(paths: DaemonPaths) -> socket.socket:
    """A listening socket at `paths.socket`, 0600, replacing a stale one atomically (bound
    under a temporary name, then renamed). Raises DaemonRunning if a daemon answers there."""
    ensure_directory(paths.directory)
    if socket_exists(paths.socket):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(paths.socket)
            except OSError:
                pass  # stale: replaced below
            else:
                raise DaemonRunning(paths.socket)
    temporary = os.path.join(paths.directory, f".{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(temporary)
        os.chmod(temporary, 0o600)
        sock.listen(128)
        os.rename(temporary, paths.socket)
    except OSError:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return sock


class _Daemon:
    def __init__(
        self,
        paths: DaemonPaths,
        on_session: SessionHandler,
        on_control: ControlHandler | None,
        env: Mapping[str, str],
    ) -> None:
        self.paths = paths
        self._on_session = on_session
        self._on_control = on_control
        key_variables = read_user_config(env).key_variables
        self._secret_names = frozenset(key_variables)
        self._env_key = env_key(relevant_env(env, key_variables))
        self._started = time.monotonic()
        self._numbers = 0
        self.sessions: dict[int, Connection] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._idle_since = time.monotonic()
        self.stop_reason: str | None = None
        self._inode: tuple[int, int] | None = None

    def mark_bound(self) -> None:
        st = os.stat(self.paths.socket)
        self._inode = (st.st_dev, st.st_ino)

    def still_ours(self) -> bool:
        try:
            st = os.stat(self.paths.socket)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._inode

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self._wake.set()

    # -- one connection --------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except Exception:
            log.exception("a daemon connection failed")
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        uid = peer_uid(writer.get_extra_info("socket"))
        if uid is not None and uid != os.getuid():
            log.warning("refused a connection from uid %d", uid)
            return  # no answer: another user learns nothing about us
        try:
            hello = await self._hello(reader)
        except HandshakeError as exc:
            log.info("handshake refused: %s", exc)
            writer.write(protocol.refusal(str(exc)))
            await writer.drain()
            return
        if hello.kind == protocol.CONTROL:
            writer.write(await self._control(hello.command))
            await writer.drain()
            return
        await self._session(hello, reader, writer)

    async def _hello(self, reader: asyncio.StreamReader) -> Hello:
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), protocol.TIMEOUT)
        except TimeoutError:
            raise HandshakeError("no handshake line in time") from None
        except asyncio.LimitOverrunError:
            raise HandshakeError("the handshake line is too long") from None
        except asyncio.IncompleteReadError:
            raise HandshakeError("the connection closed before the handshake") from None
        hello = protocol.parse_hello(line.rstrip(b"\n"))
        if hello.kind == protocol.SESSION:
            for name, value in hello.env.items():
                if name in self._secret_names or "@" in value:  # keys, proxy credentials
                    register_secret(value)
            if env_key(hello.env) != self._env_key:
                raise HandshakeError(
                    "this daemon runs with other environment variables; start another"
                )
        return hello

    async def _session(
        self, hello: Hello, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._numbers += 1
        connection = Connection(self._numbers, hello)
        self.sessions[connection.number] = connection
        self._wake.set()
        log.info("session %d from pid %d in %s", connection.number, hello.pid, hello.cwd)
        try:
            answer = protocol.ok(session=connection.number, pid=os.getpid(), version=__version__)
            writer.write(answer)
            await writer.drain()
            await self._on_session(connection, reader, writer)
        finally:
            del self.sessions[connection.number]
            if not self.sessions:
                self._idle_since = time.monotonic()
            self._wake.set()
            log.info("session %d ended", connection.number)

    async def _control(self, command: str) -> bytes:
        extra: Mapping[str, object] = {}
        if self._on_control is not None:
            extra = await self._on_control(command)
        fields: dict[str, object] = {"pid": os.getpid()}
        if command == "stop":
            self.stop("stop")
            fields["stopping"] = True
        elif command == "sessions":
            fields["sessions"] = [c.as_dict() for c in self.sessions.values()]
        else:
            fields.update(
                version=__version__,
                uptime=round(time.monotonic() - self._started, 3),
                rss=rss_bytes(),
                sessions=len(self.sessions),
                socket=self.paths.socket,
            )
        return protocol.ok(**{**extra, **fields})  # ours win a clash of names

    # -- lifetime --------------------------------------------------------------------------------

    async def watch(self, idle_timeout: float) -> str:
        """Return why the daemon ends: "idle", "replaced", "stop" or a signal's name."""
        while self.stop_reason is None:
            limit = idle_timeout if self._numbers else max(idle_timeout, STARTUP_IDLE)
            idle_for = time.monotonic() - self._idle_since
            if not self.sessions and idle_for >= limit:
                return "idle"
            if not self.sessions and not self.still_ours():
                return "replaced"  # nobody new can reach us: no reason to linger
            wait = CHECK_INTERVAL if self.sessions else min(CHECK_INTERVAL, limit - idle_for)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
        return self.stop_reason

    async def close_sessions(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=STOP_GRACE)


async def serve(
    paths: DaemonPaths,
    on_session: SessionHandler,
    *,
    on_control: ControlHandler | None = None,
    idle_timeout: float = 600.0,
    ready_fd: int | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Serve sessions at `paths.socket` until idle for `idle_timeout` seconds, stopped by a
    control command, or sent SIGTERM/SIGINT; return which ("idle", "replaced", "stop",
    "SIGTERM"...). `ready_fd` (the forwarder's pipe) gets `ready <socket path>` once
    connections are accepted, and is closed in any case. `env` (default: ours) is what
    forwarders must match. Raises DaemonRunning if another daemon has the socket."""
    try:
        daemon = _Daemon(paths, on_session, on_control, os.environ if env is None else env)
        sock = bind(paths)
        daemon.mark_bound()
        server = await asyncio.start_unix_server(daemon.handle, sock=sock, limit=protocol.MAX_LINE)
        if ready_fd is not None:
            with contextlib.suppress(OSError):  # the forwarder gave up; it finds the socket
                os.write(ready_fd, f"ready {paths.socket}\n".encode())
    finally:
        if ready_fd is not None:
            # Closed unannounced on failure: the forwarder stops waiting at once.
            os.close(ready_fd)
    log.info("daemon %d listening on %s", os.getpid(), paths.socket)
    with _stop_on_signals(daemon):
        try:
            reason = await daemon.watch(idle_timeout)
        finally:
            server.close()
            if daemon.still_ours():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(paths.socket)
            await daemon.close_sessions()
    log.info("daemon %d exits: %s", os.getpid(), reason)
    return reason


@contextlib.contextmanager
def _stop_on_signals(daemon: _Daemon) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, daemon.stop, signum.name)
        except (ValueError, RuntimeError):  # not the main thread: the embedder handles them
            continue
        installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def take_ready_fd(environ: MutableMapping[str, str] = os.environ) -> int | None:
    """The readiness pipe a forwarder passed, removed from the environment so that nothing
    the daemon starts inherits the variable."""
    value = environ.pop(READY_FD_ENV, "")
    return int(value) if value.isdigit() else None


def run_daemon(
    on_session: SessionHandler,
    *,
    idle_timeout: float = 600.0,
    on_control: ControlHandler | None = None,
) -> int:
    """The `reaper-lsp daemon` process: resolve the paths from our environment and serve
    until idle. Exit code 0 also when another daemon already serves this environment."""
    ready_fd = take_ready_fd()
    try:
        paths = resolve(os.environ)
    except DaemonUnavailable as exc:
        if ready_fd is not None:
            os.close(ready_fd)
        log.error("%s", exc)
        return 1
    try:
        asyncio.run(
            serve(paths, on_session, on_control=on_control, idle_timeout=idle_timeout,
                  ready_fd=ready_fd)
        )  # fmt: skip
    except DaemonRunning as exc:
        log.info("a daemon already listens on %s", exc)
    except DaemonUnavailable as exc:
        log.error("%s", exc)
        return 1
    return 0
