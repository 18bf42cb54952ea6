"""The daemon's listener: who may connect, what the handshake checks, control commands, and
when the daemon ends — with an echo session host, in-process."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from reaper_lsp import __version__
from reaper_lsp.daemon import listener, protocol
from reaper_lsp.daemon.listener import Connection, DaemonRunning, serve
from reaper_lsp.daemon.paths import DaemonPaths, read_user_config, relevant_env

NOBODY = 65534


@pytest.fixture
def base() -> Iterator[Path]:
    folder = tempfile.mkdtemp(prefix="rl", dir="/tmp")
    yield Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def env(base: Path) -> dict[str, str]:
    return {"HOME": str(base), "REAPER_CONFIG": str(base / "none.toml"), "OPENAI_API_KEY": "k1"}


@pytest.fixture
def where(base: Path) -> DaemonPaths:
    return DaemonPaths(str(base / "run"), "testkey")


async def echo(connection: Connection, reader: asyncio.StreamReader, writer: Any) -> None:
    """Echo lines; `describe` sets the listing; `boom` raises (a session host's bug)."""
    while line := await reader.readline():
        if line.startswith(b"describe "):
            client, root = line.split()[1:3]
            connection.describe(client=client.decode(), root=root.decode())
        if line.strip() == b"boom":
            raise RuntimeError("session host bug")
        writer.write(line)
        await writer.drain()


class Daemon:
    def __init__(self, where: DaemonPaths, env: dict[str, str], task: asyncio.Task[str]) -> None:
        self.where, self.env, self.task = where, env, task

    def hello(self, **changes: str) -> bytes:
        relevant = relevant_env({**self.env, **changes}, read_user_config(self.env).key_variables)
        return protocol.session_hello(relevant, "/project", 4242)

    async def open(self, **changes: str) -> tuple[dict[str, Any], Any, Any]:
        reader, writer = await asyncio.open_unix_connection(self.where.socket)
        writer.write(self.hello(**changes))
        answer = json.loads(await reader.readline())
        return answer, reader, writer

    async def control(self, command: str) -> dict[str, object]:
        return await asyncio.to_thread(protocol.control, self.where.socket, command)


async def start(where: DaemonPaths, env: dict[str, str], **options: Any) -> asyncio.Task[str]:
    """serve() in a task, returned once it accepts connections (its readiness line)."""
    read_end, write_end = os.pipe()
    task = asyncio.create_task(serve(where, echo, env=env, ready_fd=write_end, **options))
    try:
        assert (await asyncio.to_thread(os.read, read_end, 4096)).startswith(b"ready ")
    finally:
        os.close(read_end)
    return task


def exists(path: str) -> bool:
    return os.path.exists(path)


@pytest.fixture
async def daemon(where: DaemonPaths, env: dict[str, str]) -> AsyncIterator[Daemon]:
    task = await start(where, env, idle_timeout=60)
    yield Daemon(where, env, task)
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_session_gets_its_number_and_the_stream_after_the_handshake(
    daemon: Daemon,
) -> None:
    answer, reader, writer = await daemon.open()
    assert answer == {"ok": True, "session": 1, "pid": os.getpid(), "version": __version__}
    writer.write(b"hello\n")
    assert await reader.readline() == b"hello\n"
    writer.close()


async def test_the_socket_is_0600_in_a_0700_directory(daemon: Daemon) -> None:
    assert stat.S_IMODE(os.stat(daemon.where.socket).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(daemon.where.directory).st_mode) == 0o700
    assert stat.S_ISSOCK(os.lstat(daemon.where.socket).st_mode)


async def test_a_forwarder_with_other_keys_is_refused(daemon: Daemon) -> None:
    answer, reader, _ = await daemon.open(OPENAI_API_KEY="another key")
    assert answer["ok"] is False
    assert "other environment variables" in answer["error"]
    assert "another key" not in answer["error"]
    assert await reader.read() == b""


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"not json\n", "not JSON"),
        (b'{"reaper-lsp": 2, "kind": "session"}\n', "unsupported handshake version"),
        (b'{"reaper-lsp": 1, "kind": "control", "command": "rm"}\n', "unknown control"),
        (b'{"reaper-lsp": 1, "kind": "session", "env": {"A": 1}}\n', "env must map"),
        (b"x" * (protocol.MAX_LINE + 10), "too long"),
    ],
)
async def test_a_bad_handshake_is_answered_and_closed(
    daemon: Daemon, line: bytes, error: str
) -> None:
    reader, writer = await asyncio.open_unix_connection(daemon.where.socket)
    writer.write(line)
    answer = json.loads(await reader.readline())
    assert answer["ok"] is False and error in answer["error"]
    assert await reader.read() == b""


async def test_a_silent_client_is_dropped_after_the_handshake_timeout(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "TIMEOUT", 0.2)
    reader, _ = await asyncio.open_unix_connection(daemon.where.socket)
    answer = json.loads(await asyncio.wait_for(reader.readline(), 5))
    assert answer == {"ok": False, "error": "no handshake line in time"}


async def test_one_session_failing_leaves_the_others_running(daemon: Daemon) -> None:
    _, reader_one, writer_one = await daemon.open()
    _, reader_two, writer_two = await daemon.open()
    writer_one.write(b"boom\n")
    assert await reader_one.read() == b""  # that connection closed
    writer_two.write(b"still here\n")
    assert await reader_two.readline() == b"still here\n"
    assert not daemon.task.done()
    writer_two.close()


async def test_status_sessions_and_stop(daemon: Daemon) -> None:
    _, reader, writer = await daemon.open()
    writer.write(b"describe Neovim /home/me/project\n")
    await reader.readline()
    status = await daemon.control("status")
    assert status["pid"] == os.getpid() and status["version"] == __version__
    assert status["sessions"] == 1 and status["socket"] == daemon.where.socket
    assert isinstance(status["rss"], int) and status["rss"] > 1_000_000
    assert isinstance(status["uptime"], float)
    sessions = await daemon.control("sessions")
    listed: dict[str, object]
    [listed] = sessions["sessions"]  # type: ignore[misc]
    assert listed["client"] == "Neovim" and listed["root"] == "/home/me/project"
    assert listed["pid"] == 4242 and listed["session"] == 1
    assert (await daemon.control("stop"))["stopping"] is True
    assert await asyncio.wait_for(daemon.task, 5) == "stop"
    assert not exists(daemon.where.socket)
    assert await reader.read() == b""  # sessions end with the daemon


async def test_on_control_adds_the_apps_figures(where: DaemonPaths, env: dict[str, str]) -> None:
    async def figures(command: str) -> dict[str, object]:
        return {"cache": {"entries": 3}} if command == "status" else {}

    task = await start(where, env, on_control=figures)
    status = await asyncio.to_thread(protocol.control, where.socket, "status")
    assert status["cache"] == {"entries": 3}
    await asyncio.to_thread(protocol.control, where.socket, "stop")
    await task


async def test_the_daemon_exits_when_idle_and_removes_its_socket(
    where: DaemonPaths, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listener, "STARTUP_IDLE", 0.3)
    task = asyncio.create_task(serve(where, echo, idle_timeout=0.2, env=env))
    assert await asyncio.wait_for(task, 5) == "idle"
    assert not exists(where.socket)


async def test_the_idle_timer_starts_again_when_the_last_session_ends(
    where: DaemonPaths, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listener, "STARTUP_IDLE", 0.3)
    task = await start(where, env, idle_timeout=0.3)
    _, _, writer = await Daemon(where, env, task).open()
    await asyncio.sleep(0.8)
    assert not task.done()  # a session is open
    writer.close()
    assert await asyncio.wait_for(task, 5) == "idle"


async def test_a_stale_socket_is_replaced(where: DaemonPaths, env: dict[str, str]) -> None:
    os.makedirs(where.directory, mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(where.socket)
    stale.close()
    os.chmod(where.socket, 0o600)
    task = asyncio.create_task(serve(where, echo, env=env))
    answer, _, writer = await _open_when_ready(where, env, task)
    assert answer["ok"] is True
    writer.close()
    task.cancel()


async def test_a_second_daemon_leaves_a_live_one_alone(daemon: Daemon) -> None:
    before = os.stat(daemon.where.socket).st_ino
    with pytest.raises(DaemonRunning):
        await serve(daemon.where, echo, env=daemon.env)
    assert os.stat(daemon.where.socket).st_ino == before


async def test_a_replaced_socket_is_not_removed(
    where: DaemonPaths, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listener, "CHECK_INTERVAL", 0.05)
    task = await start(where, env)
    other = socket.socket(socket.AF_UNIX)
    other.bind(where.socket + ".new")
    os.rename(where.socket + ".new", where.socket)
    assert await asyncio.wait_for(task, 5) == "replaced"
    assert exists(where.socket)
    other.close()


async def test_the_ready_pipe_gets_the_socket_path(where: DaemonPaths, env: dict[str, str]) -> None:
    read_end, write_end = os.pipe()
    task = asyncio.create_task(serve(where, echo, env=env, ready_fd=write_end))
    line = await asyncio.to_thread(os.read, read_end, 4096)
    assert line == f"ready {where.socket}\n".encode()
    assert await asyncio.to_thread(os.read, read_end, 4096) == b""  # closed after
    os.close(read_end)
    task.cancel()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
async def test_a_peer_of_another_uid_gets_no_answer(daemon: Daemon) -> None:
    # Loosen the filesystem guard so that only the peer check stands in the way.
    os.chmod(os.path.dirname(daemon.where.directory), 0o755)
    os.chmod(daemon.where.directory, 0o755)
    os.chmod(daemon.where.socket, 0o777)
    hello = daemon.hello()
    status = await asyncio.to_thread(_connect_as, NOBODY, daemon.where.socket, hello)
    assert status == 0, "the daemon answered another user"
    os.chmod(daemon.where.socket, 0o600)
    assert (await daemon.control("status"))["sessions"] == 0


def _connect_as(uid: int, path: str, hello: bytes) -> int:
    """Exit status of a child that connects as `uid`: 0 when the daemon closed without a word."""
    pid = os.fork()
    if pid == 0:  # the child: plain system calls only, then _exit
        code = 1
        try:
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10)
                sock.connect(path)
                code = 0
                try:
                    sock.sendall(hello)
                    code = 0 if sock.recv(100) == b"" else 2
                except (BrokenPipeError, ConnectionResetError):
                    pass  # closed before or without reading our hello: no answer either
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


async def _open_when_ready(
    where: DaemonPaths, env: dict[str, str], task: asyncio.Task[str]
) -> tuple[dict[str, Any], Any, Any]:
    for _ in range(500):
        try:
            return await Daemon(where, env, task).open()
        except (ConnectionRefusedError, FileNotFoundError, json.JSONDecodeError):
            await asyncio.sleep(0.01)
    raise AssertionError("the daemon never answered")


def test_a_hello_never_shows_the_values_it_carries() -> None:
    line = protocol.session_hello({"OPENAI_API_KEY": "sk-secret-value"}, "/p", 7)
    hello = protocol.parse_hello(line.rstrip(b"\n"))
    assert hello.env == {"OPENAI_API_KEY": "sk-secret-value"}
    assert "sk-secret" not in repr(hello) and "OPENAI_API_KEY" in repr(hello)
