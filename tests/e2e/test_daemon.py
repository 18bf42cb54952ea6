"""The daemon as editors meet it: `reaper-lsp` (the forwarder) in front of one warm process per
user and environment. Each test has its own runtime folder (conftest `runtime_dir`), so its
daemons are its own, and they are stopped when it ends."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

from pygls.exceptions import JsonRpcException

from reaper_lsp.daemon.paths import resolve
from reaper_lsp.daemon.protocol import control
from tests.e2e.conftest import (
    REAPER_LSP,
    Session,
    isolated_env,
    merge_user_config,
    openai_options,
)
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

KEY = {"OPENAI_API_KEY": "sk-test"}
TEXT = "def shout(name):\n    return \n"


def daemon_status(home: Path, **env: str) -> dict[str, Any]:
    """What the daemon serving this environment says of itself."""
    return control(resolve(isolated_env(home, **env)).socket, "status")


def sockets(runtime: Path) -> list[Path]:
    return sorted(runtime.glob("reaper-lsp/*.sock"))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def daemons_in(runtime: Path) -> list[int]:
    """The daemon processes whose sockets live in `runtime` (this test's own)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"reaper_lsp\x00daemon" in command and f"XDG_RUNTIME_DIR={runtime}".encode() in environ:
            found.append(int(proc.name))
    return found


async def wait_for(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def test_two_editors_share_one_daemon_one_connection_and_the_cache(
    start_session: Any, openai_fake: FakeServer, home: Path, runtime_dir: Path
) -> None:
    openai_fake.script.queue(Reply(text="name.upper()"))
    first: Session = await start_session(openai_options(openai_fake), KEY, daemon=True)
    second: Session = await start_session(openai_options(openai_fake), KEY, daemon=True)
    status = daemon_status(home, **KEY)
    assert status["sessions"] == 2 and len(sockets(runtime_dir)) == 1
    one = first.open("shout.py", TEXT)
    assert await first.inline(one, 1, 11) == ["name.upper()"]
    # The other window, at the same context: from the daemon's shared cache, no request.
    two = second.open("shout.py", TEXT)
    assert await second.inline(two, 1, 11) == ["name.upper()"]
    posts = [r for r in openai_fake.script.requests if r.method == "POST"]
    assert len(posts) == 1
    assert openai_fake.connections_opened == 1  # one upstream connection for both editors
    sessions = control(resolve(isolated_env(home, **KEY)).socket, "sessions")["sessions"]
    assert isinstance(sessions, list) and len(sessions) == 2
    assert {s["root"] for s in sessions} == {str(first.workspace)}


async def test_a_daemon_killed_mid_session_is_restarted_and_knows_the_open_documents(
    start_session: Any, openai_fake: FakeServer, home: Path
) -> None:
    openai_fake.script.queue(Reply(text="name.upper()"), Reply(text="name.title()"))
    s: Session = await start_session(openai_options(openai_fake), KEY, daemon=True)
    uri = s.open("shout.py", TEXT)
    assert await s.inline(uri, 1, 11) == ["name.upper()"]
    s.type_text(uri, 1, 11, "x = 1\n    return ")  # an edit the new daemon must replay
    pid = int(daemon_status(home, **KEY)["pid"])
    os.kill(pid, signal.SIGKILL)
    await wait_for(lambda: not alive(pid))
    # The next request reaches a new daemon, which was told the document as it is now. (One
    # sent before the forwarder saw the daemon go is answered with an error instead: in flight.)
    try:
        found = await s.inline(uri, 2, 11, invoked=True)
    except JsonRpcException as error:
        assert "daemon restarted" in str(error)
        found = await s.inline(uri, 2, 11, invoked=True)
    assert found == ["name.title()"]
    restarted = daemon_status(home, **KEY)
    assert restarted["pid"] != pid and restarted["sessions"] == 1
    sent = openai_fake.script.requests[-1].body
    assert "x = 1" in json.dumps(sent)  # the replayed text, edit included


async def test_two_editors_starting_at_the_same_instant_make_one_daemon(
    start_session: Any, openai_fake: FakeServer, home: Path, runtime_dir: Path
) -> None:
    both = await asyncio.gather(
        start_session(openai_options(openai_fake), KEY, daemon=True),
        start_session(openai_options(openai_fake), KEY, daemon=True),
    )
    assert len(both) == 2
    assert len(sockets(runtime_dir)) == 1
    assert daemon_status(home, **KEY)["sessions"] == 2
    assert len(daemons_in(runtime_dir)) == 1


async def test_another_environment_gets_its_own_daemon(
    start_session: Any, openai_fake: FakeServer, home: Path, runtime_dir: Path
) -> None:
    """gopls's best-known daemon bug: a daemon started with someone else's keys."""
    await start_session(openai_options(openai_fake), KEY, daemon=True)
    await start_session(openai_options(openai_fake), {"OPENAI_API_KEY": "sk-other"}, daemon=True)
    assert len(sockets(runtime_dir)) == 2
    first, other = daemon_status(home, **KEY), daemon_status(home, OPENAI_API_KEY="sk-other")
    assert first["pid"] != other["pid"]


async def test_the_socket_is_private_and_an_idle_daemon_exits(
    start_session: Any, home: Path, runtime_dir: Path
) -> None:
    merge_user_config(isolated_env(home), {"daemon": {"idle_timeout": 1}})
    s: Session = await start_session({}, daemon=True)
    [path] = sockets(runtime_dir)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
    pid = int(daemon_status(home)["pid"])
    await asyncio.wait_for(s.client.shutdown_session(), 10)
    s.client.capabilities = None  # already shut down: the fixture has nothing left to do
    await wait_for(lambda: not alive(pid), timeout=20)
    assert sockets(runtime_dir) == []


def test_a_squatted_socket_path_is_refused_and_the_editor_is_served_in_process(
    home: Path, workspace: Path
) -> None:
    env = isolated_env(home)
    path = Path(resolve(env).socket)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text("not a socket")  # squatted: never used, never removed
    frames = b"".join(
        _frame(message)
        for message in (
            {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"processId": None, "rootUri": workspace.as_uri(), "capabilities": {}}},
            {"jsonrpc": "2.0", "id": 2, "method": "shutdown"},
            {"jsonrpc": "2.0", "method": "exit"},
        )
    )  # fmt: skip
    done = subprocess.run(
        [REAPER_LSP], input=frames, env=env, capture_output=True, timeout=60, cwd=workspace
    )
    assert done.returncode == 0, done.stderr
    assert b'"serverInfo"' in done.stdout  # answered, in-process
    log = done.stderr.decode()
    assert "serving in this process" in log and str(path) in log
    assert log.count("serving in this process") == 1
    assert path.read_text() == "not a socket"


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


async def test_status_notices_reach_every_editor_of_the_daemon(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(status=401, body={"error": {"message": "bad key"}}))
    options = openai_options(openai_fake)
    first: Session = await start_session(options, KEY, daemon=True)
    second: Session = await start_session(options, KEY, daemon=True)
    uri = first.open("a.py", "x = \n")
    await first.inline(uri, 0, 4, invoked=True)
    for s in (first, second):
        await wait_for(lambda s=s: any("rejected the API key" in m.message
                                       for m in s.client.messages))  # fmt: skip
