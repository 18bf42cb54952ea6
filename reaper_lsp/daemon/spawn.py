"""Reach the daemon, starting it when nobody listens: connect; else take the lock, connect
again (another forwarder may have just started it), remove a stale socket of ours, start the
daemon detached, and wait for its readiness line on an inherited pipe (then, like gopls, for
the socket with doubling backoff). The lock makes forwarders started together start one daemon.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket
import sys
import time

from reaper_lsp.daemon.paths import DaemonUnavailable, log_file, resolve, socket_exists
from reaper_lsp.daemon.protocol import control

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping, Sequence

    from reaper_lsp.daemon.paths import DaemonPaths

READY_FD_ENV = "REAPER_LSP_READY_FD"
"""Names the pipe a daemon writes `ready <socket path>` to once it accepts connections."""
READY_TIMEOUT = 15.0
"""Seconds for a cold daemon to import everything and bind (slow disks, loaded machines)."""
BACKOFF_FIRST = 0.05
BACKOFF_TRIES = 8
LOCK_TIMEOUT = 45.0
"""Longer than a lock holder's whole wait for its daemon."""


def default_command() -> list[str]:
    return [sys.executable, "-m", "reaper_lsp", "daemon"]


def connect(path: str) -> socket.socket | None:
    """A connection to a daemon at `path`, or None when nobody listens there. A path that is
    not our socket raises DaemonUnavailable."""
    if not socket_exists(path):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return None
        raise DaemonUnavailable(f"cannot connect to {path}: {exc}") from exc
    return sock


class _Lock:
    """flock on the lock file, polled so a stuck holder costs a timeout, not a hang."""

    def __init__(self, path: str) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            self._fd = os.open(path, flags, 0o600)
        except OSError as exc:
            raise DaemonUnavailable(f"cannot open the lock file {path}: {exc}") from exc

    def __enter__(self) -> _Lock:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self._fd)
                    raise DaemonUnavailable("another reaper-lsp holds the daemon lock") from None
                time.sleep(0.01)

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._fd)  # releases the lock


def connect_or_start(
    paths: DaemonPaths, env: Mapping[str, str], command: Sequence[str] | None = None
) -> tuple[socket.socket, subprocess.Popen[bytes] | None]:
    """A connection to the daemon, and the daemon process when this call started it."""
    sock = connect(paths.socket)
    if sock is not None:
        return sock, None
    with _Lock(paths.lock):
        sock = connect(paths.socket)
        if sock is not None:
            return sock, None
        if socket_exists(paths.socket):
            os.unlink(paths.socket)  # ours, and nobody listens: stale
        process, ready = _start(command or default_command(), env)
        try:
            return _wait(paths, env, process, ready), process
        finally:
            os.close(ready)


def _start(command: Sequence[str], env: Mapping[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    import subprocess  # only forwarders that start a daemon pay for it

    read_end, write_end = os.pipe()
    child_env = {**env, READY_FD_ENV: str(write_end)}
    log = _open_log(env)
    output = subprocess.DEVNULL if log is None else log
    try:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            env=child_env,
            cwd="/",  # never pin a mount, never import a `reaper_lsp` from the editor's cwd
            start_new_session=True,  # outlives the editor and its process-group kill
            pass_fds=(write_end,),
        )
    except OSError as exc:
        os.close(read_end)
        raise DaemonUnavailable(f"cannot start the daemon {command[0]}: {exc}") from exc
    finally:
        os.close(write_end)
        if log is not None:
            os.close(log)
    return process, read_end


def _open_log(env: Mapping[str, str]) -> int | None:
    """The daemon's log file opened for appending, or None when it cannot be."""
    path = log_file(env)
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        return os.open(path, flags, 0o600)
    except OSError:
        return None


def _ready_line(fd: int) -> str | None:
    """The socket path the daemon announced, or None when it closed the pipe without."""
    deadline = time.monotonic() + READY_TIMEOUT
    data = b""
    while b"\n" not in data and len(data) < 4096:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
    word, _, path = data.partition(b"\n")[0].decode("utf-8", "replace").partition(" ")
    return path if word == "ready" else None


def _wait(
    paths: DaemonPaths, env: Mapping[str, str], process: subprocess.Popen[bytes], ready: int
) -> socket.socket:
    announced = _ready_line(ready)
    # A daemon built from newer files (an upgrade under a running editor) binds under its
    # own name: follow it, as long as it is in our directory.
    if announced and os.path.dirname(announced) == paths.directory:
        sock = connect(announced)
        if sock is not None:
            return sock
    delay = BACKOFF_FIRST
    for _ in range(BACKOFF_TRIES):
        sock = connect(paths.socket)
        if sock is not None:
            return sock
        if process.poll() is not None:
            break
        time.sleep(delay)
        delay *= 2
    sock = connect(paths.socket)  # a daemon that lost a start race leaves the winner's socket
    if sock is not None:
        return sock
    state = "did not start" if process.poll() is None else f"exited ({process.returncode})"
    raise DaemonUnavailable(f"the daemon {state}; see {log_file(env)}")


def ensure_running(
    env: Mapping[str, str] | None = None, command: Sequence[str] | None = None
) -> dict[str, object]:
    """Start the daemon for `env` (default: ours) unless it runs; its `status` answer
    (`reaper-lsp daemon start`). Raises DaemonUnavailable or HandshakeError."""
    env = os.environ if env is None else env
    paths = resolve(env)
    sock, _ = connect_or_start(paths, env, command)
    sock.close()
    return control(paths.socket, "status")
