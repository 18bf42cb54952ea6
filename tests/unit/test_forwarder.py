"""The forwarder as editors run it: a real process between a pipe pair and a daemon it starts
(the echo daemon, through the same spawn path), including the daemon's death mid-session."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reaper_lsp.daemon import forwarder, paths, protocol
from reaper_lsp.daemon.tracker import RESTARTED
from reaper_lsp.daemon.wire import FrameSplitter, encode

HERE = Path(__file__).resolve().parents[1] / "fakes"
FORWARDER = str(HERE / "forwarder_main.py")
ECHO_DAEMON = str(HERE / "echo_daemon.py")
FORBIDDEN = ("pygls", "lsprotocol", "httpx", "aioquic", "asyncio", "reaper_lsp.providers",
             "reaper_lsp.net", "reaper_lsp.auth", "reaper_lsp.services",
             "reaper_lsp.lsp")  # fmt: skip
INIT = {"capabilities": {}, "clientInfo": {"name": "test-editor"}, "rootUri": "file:///proj"}


class World:
    """One user's environment (its own runtime, state and config dirs) and its records."""

    def __init__(self, base: Path) -> None:
        (base / "run").mkdir(mode=0o700)
        self.base = base
        self.record = base / "record.jsonl"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(base),
            "XDG_RUNTIME_DIR": str(base / "run"),
            "XDG_STATE_HOME": str(base / "state"),
            "REAPER_CONFIG": str(base / "reaper.toml"),
            "ECHO_DAEMON_RECORD": str(self.record),
        }
        self.editors: list[Editor] = []

    @property
    def socket(self) -> str:
        return paths.resolve(self.env).socket

    def events(self, **match: object) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        lines = self.record.read_text(encoding="utf-8").splitlines()
        events = [json.loads(line) for line in lines]
        return [e for e in events if all(e.get(k) == v for k, v in match.items())]

    def messages(self, pid: int) -> list[dict[str, Any]]:
        return [e["message"] for e in self.events(event="message", pid=pid)]

    def editor(self, **env: str) -> Editor:
        editor = Editor({**self.env, **env})
        self.editors.append(editor)
        return editor

    def cleanup(self) -> None:
        for editor in self.editors:
            if editor.process.poll() is None:
                editor.process.kill()
            editor.process.wait()
        for event in self.events(event="start"):  # only daemons this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(event["pid"], signal.SIGKILL)


class Editor:
    """The editor's end of one forwarder process."""

    def __init__(self, env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, FORWARDER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.raw = b""
        self.first_byte: float | None = None
        self._frames = FrameSplitter()
        self._inbox: list[dict[str, Any]] = []

    def send_raw(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(encode({"jsonrpc": "2.0", **message}))

    def notify(self, method: str, params: object = None) -> None:
        self.send({"method": method, "params": params if params is not None else {}})

    def receive(self, timeout: float = 20.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while not self._inbox:
            left = deadline - time.monotonic()
            assert left > 0 and select.select([fd], [], [], left)[0], "no message in time"
            data = os.read(fd, 65536)
            assert data, f"the forwarder closed its stdout: {self.stderr()}"
            if self.first_byte is None:
                self.first_byte = time.monotonic()
            self.raw += data
            self._inbox += [m for _, m in self._frames.feed(data) if m is not None]
        return self._inbox.pop(0)

    def request(self, msg_id: int, method: str, params: object = None) -> dict[str, Any]:
        self.send({"id": msg_id, "method": method, "params": params or {}})
        return self.answer(msg_id)

    def answer(self, msg_id: int) -> dict[str, Any]:
        while True:
            message = self.receive()
            if message.get("id") == msg_id and "method" not in message:
                return message

    def initialize(self) -> int:
        """The daemon's pid, as the echo daemon reports it."""
        return int(self.request(1, "initialize", INIT)["result"]["serverInfo"]["pid"])

    def close(self, *, shutdown: bool = True, timeout: float = 20.0) -> int:
        if shutdown:
            self.request(99, "shutdown")
        self.notify("exit")
        return self.process.wait(timeout)

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")


@pytest.fixture
def world() -> Iterator[World]:
    base = tempfile.mkdtemp(prefix="rf", dir="/tmp")  # short: AF_UNIX paths
    world = World(Path(base))
    yield world
    world.cleanup()
    shutil.rmtree(base, ignore_errors=True)


def wait_until(check: Callable[[], object], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.02)
    raise AssertionError("timed out")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def schedstat_ms(pid: int) -> tuple[float, float]:
    """(time on a CPU, time waiting for one) so far: what the process costs, and what the
    machine's load added to its wall time."""
    on_cpu, waiting, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(on_cpu) / 1e6, int(waiting) / 1e6


def opened(uri: str, text: str, version: int = 1) -> dict[str, Any]:
    return {"textDocument": {"uri": uri, "languageId": "python", "version": version, "text": text}}


# -- passing through ------------------------------------------------------------------------------


def test_bytes_pass_through_unchanged_both_ways(world: World) -> None:
    editor = world.editor()
    pid = editor.initialize()
    odd = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
    body = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "x/é", "params": ["\u2028"]}).encode()
    frame = odd + b"Content-Length: %d\r\n\r\n" % len(body) + body
    editor.send_raw(b"\r\n" + frame)
    reply = editor.answer(2)
    assert editor.close() == 0
    sent = "".join(e["data"] for e in world.events(event="raw", pid=pid)).encode("latin-1")
    assert (b"\r\n" + frame) in sent
    assert encode(reply) in editor.raw  # what the daemon wrote, byte for byte


def test_start_up_latency_and_memory_are_measured(world: World) -> None:
    cold = world.editor()
    cold.send({"id": 1, "method": "initialize", "params": INIT})
    cold.answer(1)
    cold_ms = ((cold.first_byte or 0) - cold.started) * 1000
    assert cold.close() == 0
    to_daemon, to_editor, cpu, queued = [], [], [], []
    for _ in range(5):
        editor = world.editor()
        editor.send({"id": 1, "method": "initialize", "params": INIT})  # before it even runs
        pid = int(editor.answer(1)["result"]["serverInfo"]["pid"])
        on_cpu, waiting = schedstat_ms(editor.process.pid)
        cpu.append(on_cpu)
        queued.append(waiting)
        arrived = world.events(event="first-byte", pid=pid)[-1]["t"]
        to_daemon.append((arrived - editor.started) * 1000)
        to_editor.append(((editor.first_byte or 0) - editor.started) * 1000)
        editor.notify("textDocument/didOpen", opened("file:///big.py", "x = 1\n" * 20_000))
        editor.request(2, "x/y")
        rss = rss_kib(editor.process.pid)
        assert editor.close() == 0
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    time.sleep(0.5)
    bare_cpu, _ = schedstat_ms(bare.pid)
    bare.kill()
    bare.wait()
    median = statistics.median
    print(
        f"\nforwarder, cold (starting the daemon): first answer byte after {cold_ms:.0f} ms"
        f"\nforwarder, daemon running: start to first byte at the daemon {median(to_daemon):.1f}"
        f" ms (min {min(to_daemon):.1f}), to the first answer byte {median(to_editor):.1f} ms;"
        f" CPU until then {median(cpu):.1f} ms (a bare interpreter: {bare_cpu:.1f} ms), time"
        f" waiting for a CPU {median(queued):.1f} ms; load {os.getloadavg()[0]:.1f}"
        f"\nforwarder RSS with a 120 KB document open: {rss / 1024:.1f} MiB"
    )
    assert rss <= 20 * 1024


def test_the_forwarder_loads_none_of_the_server_layers(world: World) -> None:
    modules = world.base / "modules.txt"
    editor = world.editor(FORWARDER_MODULES=str(modules))
    editor.initialize()
    editor.notify("textDocument/didOpen", opened("file:///a.py", "a\n"))
    change = {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}}
    editor.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": "file:///a.py", "version": 2}, "contentChanges": [
            {**change, "text": "b"}]},
    )  # fmt: skip
    assert editor.close() == 0
    loaded = modules.read_text().split()
    assert "reaper_lsp.daemon.forwarder" in loaded
    heavy = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert heavy == []


def test_control_commands_see_the_session(world: World) -> None:
    editor = world.editor()
    pid = editor.initialize()
    status = protocol.control(world.socket, "status")
    assert status["pid"] == pid and status["sessions"] == 1
    listed: dict[str, object]
    [listed] = protocol.control(world.socket, "sessions")["sessions"]  # type: ignore[misc]
    assert listed["client"] == "test-editor" and listed["root"] == "file:///proj"
    assert editor.close() == 0


# -- starting the daemon --------------------------------------------------------------------------


def test_forwarders_started_together_start_one_daemon(world: World) -> None:
    editors = [world.editor(ECHO_DAEMON_DELAY="0.5") for _ in range(3)]
    pids = {editor.initialize() for editor in editors}
    assert len(pids) == 1
    assert len(world.events(event="start")) == 1
    assert [editor.close() for editor in editors] == [0, 0, 0]


def test_exit_codes_follow_the_lsp_rules(world: World) -> None:
    polite = world.editor()
    polite.initialize()
    assert polite.close(shutdown=True) == 0
    abrupt = world.editor()
    abrupt.initialize()
    assert abrupt.close(shutdown=False) == 1
    gone = world.editor()
    gone.initialize()
    assert gone.process.stdin is not None
    gone.process.stdin.close()  # the editor went away
    assert gone.process.wait(20) == 0


def test_the_daemon_exits_when_idle_and_removes_its_socket(world: World) -> None:
    editor = world.editor(ECHO_DAEMON_IDLE="0.3")
    pid = editor.initialize()
    socket_path = world.socket
    assert editor.close() == 0
    wait_until(lambda: world.events(event="end", pid=pid))
    assert not os.path.exists(socket_path)


def test_sigterm_ends_the_daemon_and_removes_its_socket(world: World) -> None:
    editor = world.editor()
    pid = editor.initialize()
    os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: world.events(event="end", pid=pid))[0]["code"] == 0
    assert not os.path.exists(world.socket)


# -- falling back ---------------------------------------------------------------------------------


def run_in_process(world: World, **options: Any) -> tuple[int | forwarder.Fallback, bytes]:
    """run() on a pipe that already holds a request: (its result, what stdin still holds)."""
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    request = encode({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
    os.write(stdin_write, request)
    os.close(stdin_write)
    try:
        result = forwarder.run(stdin_read, stdout_write, env=world.env, **options)
        return result, os.read(stdin_read, 65536)
    finally:
        for fd in (stdin_read, stdout_read, stdout_write):
            os.close(fd)


def test_a_squatted_socket_path_means_in_process_with_a_reason(world: World) -> None:
    Path(world.socket).write_text("not a socket")
    result, unread = run_in_process(world)
    assert isinstance(result, forwarder.Fallback)
    assert "is not a socket" in result.reason
    assert unread.startswith(b"Content-Length:")  # nothing of the client's was consumed


def test_a_daemon_that_cannot_start_means_in_process(world: World) -> None:
    failing = [sys.executable, "-c", "raise SystemExit(2)"]
    started = time.monotonic()
    result, unread = run_in_process(world, daemon_command=failing)
    assert isinstance(result, forwarder.Fallback)
    assert "exited (2)" in result.reason and "daemon.log" in result.reason
    assert time.monotonic() - started < 10
    assert unread.startswith(b"Content-Length:")


def test_the_daemon_can_be_turned_off_in_the_config(world: World) -> None:
    Path(world.env["REAPER_CONFIG"]).write_text("[daemon]\nenabled = false\n")
    result, _ = run_in_process(world)
    assert isinstance(result, forwarder.Fallback)
    assert "enabled = false" in result.reason


# -- the daemon dies ------------------------------------------------------------------------------


def test_a_killed_daemon_is_replaced_and_told_the_session_again(world: World) -> None:
    editor = world.editor()
    old = editor.initialize()
    editor.notify("initialized")
    editor.notify("workspace/didChangeConfiguration", {"settings": {"reaper": {"n": 1}}})
    editor.notify("workspace/didChangeConfiguration", {"settings": {"reaper": {"n": 2}}})
    editor.notify("textDocument/didOpen", opened("file:///a.py", "def f():\n    pass\n"))
    span = {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 8}}
    editor.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": "file:///a.py", "version": 2},
         "contentChanges": [{"range": span, "text": "return 1"}]},
    )  # fmt: skip
    editor.notify("textDocument/didOpen", opened("file:///b.py", "b"))
    editor.notify("textDocument/didClose", {"textDocument": {"uri": "file:///b.py"}})
    editor.send({"id": 5, "method": "test/hang", "params": {}})
    wait_until(lambda: any(m.get("id") == 5 for m in world.messages(old)))

    os.kill(old, signal.SIGKILL)

    assert editor.answer(5)["error"]["code"] == RESTARTED
    new = editor.request(6, "x/y")["result"]["pid"]
    assert new != old
    replayed = world.messages(new)
    assert replayed[0]["method"] == "initialize" and replayed[0]["params"] == INIT
    assert [m.get("method") for m in replayed] == [
        "initialize",
        "initialized",
        "workspace/didChangeConfiguration",
        "textDocument/didOpen",
        "x/y",
    ]
    assert replayed[2]["params"] == {"settings": {"reaper": {"n": 2}}}
    assert replayed[3]["params"] == opened("file:///a.py", "def f():\n    return 1\n", 2)
    answers_to_initialize = [
        m for _, m in FrameSplitter().feed(editor.raw) if m and m.get("id") == 1
    ]
    assert len(answers_to_initialize) == 1  # the replayed one was swallowed
    assert editor.close() == 0
    assert "replaying the session" in editor.stderr()


def test_a_frame_half_sent_to_a_dying_daemon_reaches_the_next_one_whole(world: World) -> None:
    editor = world.editor()
    old = editor.initialize()
    editor.notify("textDocument/didOpen", opened("file:///a.py", "abc"))
    change = encode({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": "file:///a.py", "version": 2},
        "contentChanges": [{"text": "xyz"}]}})  # fmt: skip
    editor.send_raw(change[:40])
    wait_until(lambda: change[:40].decode() in "".join(
        e["data"] for e in world.events(event="raw", pid=old)))  # fmt: skip
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: len(world.events(event="session")) == 2)
    editor.send_raw(change[40:])
    new = editor.request(7, "x/y")["result"]["pid"]
    methods = [(m.get("method"), m.get("params")) for m in world.messages(new)]
    assert methods[1:] == [
        ("textDocument/didOpen", opened("file:///a.py", "abc")),
        ("textDocument/didChange", json.loads(change.split(b"\r\n\r\n")[1])["params"]),
        ("x/y", {}),
    ]
    assert editor.close() == 0


def test_a_daemon_gone_after_shutdown_is_not_restarted(world: World) -> None:
    editor = world.editor()
    old = editor.initialize()
    editor.send({"id": 8, "method": "shutdown"})
    assert editor.answer(8)["result"] is None
    os.kill(old, signal.SIGKILL)
    time.sleep(0.3)
    editor.notify("exit")
    assert editor.process.wait(20) == 0
    assert len(world.events(event="start")) == 1


def test_the_daemon_can_be_started_asked_and_stopped_without_an_editor(world: World) -> None:
    from reaper_lsp.daemon.spawn import ensure_running

    status = ensure_running(world.env, [sys.executable, ECHO_DAEMON])
    assert protocol.ask("status", world.env)["pid"] == status["pid"]
    assert ensure_running(world.env, [sys.executable, ECHO_DAEMON])["pid"] == status["pid"]
    assert protocol.ask("stop", world.env)["stopping"] is True
    wait_until(lambda: world.events(event="end", pid=status["pid"]))
    with pytest.raises(FileNotFoundError):
        protocol.ask("status", world.env)


def test_an_initialize_the_dead_daemon_never_answered_is_answered_by_the_next(
    world: World,
) -> None:
    hang = world.base / "hang-once"
    hang.write_text("")
    editor = world.editor(ECHO_DAEMON_HANG_ONCE=str(hang))
    editor.send({"id": 1, "method": "initialize", "params": INIT})
    [old] = wait_until(lambda: [e["pid"] for e in world.events(event="message")])
    os.kill(old, signal.SIGKILL)
    answer = editor.answer(1)
    assert answer["result"]["serverInfo"]["pid"] != old
    assert editor.close() == 0


def test_a_stale_socket_is_replaced_by_a_new_daemon(world: World) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(world.socket)
    stale.close()
    os.chmod(world.socket, 0o600)
    editor = world.editor()
    editor.initialize()
    assert editor.close() == 0
