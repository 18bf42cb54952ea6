"""`shutdown` and `exit` written together, before the client reads anything — as editors do
when they quit: the shutdown is answered, the process (or, through the forwarder, the
connection) ends with status 0, and nothing lands on stderr or in the daemon's log but log
lines (no CancelledError or SystemExit traceback). In-process and through the forwarder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.conftest import REAPER_LSP, isolated_env, merge_user_config
from tests.e2e.test_rpc_faults import TIMEOUT, RawClient, frame, request
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

MODES = {"in-process": ["--no-daemon"], "forwarder": []}


def daemon_log(home: Path) -> str:
    from reaper_lsp.daemon.paths import log_file

    path = Path(log_file(isolated_env(home)))
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def assert_no_traceback(text: str) -> None:
    for word in ("Traceback", "CancelledError", "SystemExit", "Task was destroyed"):
        assert word not in text, text[-4000:]


@pytest_asyncio.fixture
async def launch(home: Path, workspace: Path) -> AsyncIterator[Callable[..., Any]]:
    clients: list[RawClient] = []

    async def start(args: list[str], env: dict[str, str] | None = None) -> RawClient:
        process = await asyncio.create_subprocess_exec(
            REAPER_LSP, *args, "--log-level", "debug",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=(home / "stderr.log").open("ab"),
            env=isolated_env(home, **(env or {})),
            cwd=workspace,
        )  # fmt: skip
        client = RawClient(process, workspace)
        clients.append(client)
        return client

    yield start
    for client in clients:
        if client.process.returncode is None:
            client.process.kill()
        await client.process.wait()


async def shutdown_and_exit(client: RawClient) -> None:
    """Both frames in one write, then read: the shutdown answer, then the end of the stream."""
    shutdown = frame(request(90, "shutdown"))
    client.send(shutdown + frame({"jsonrpc": "2.0", "method": "exit"}))
    assert client.process.stdin is not None
    await client.process.stdin.drain()
    assert (await client.answer(90)).get("result", "missing") is None
    assert await asyncio.wait_for(client.process.wait(), TIMEOUT) == 0


@pytest.mark.parametrize("mode", MODES.values(), ids=MODES.keys())
@pytest.mark.parametrize("initialized", [True, False], ids=["initialized", "no-initialized"])
async def test_shutdown_then_exit_at_once_is_answered_and_ends_cleanly(
    launch: Any, home: Path, mode: list[str], initialized: bool
) -> None:
    client: RawClient = await launch(mode)
    uri = client.workspace.as_uri()
    params = {"processId": None, "capabilities": {}, "rootUri": uri}
    if initialized:
        await client.initialize()
    else:  # `initialized`, `shutdown` and `exit` all behind `initialize`, unread
        client.send(frame(request(0, "initialize", params)))
    await shutdown_and_exit(client)
    assert_no_traceback((home / "stderr.log").read_text(encoding="utf-8", errors="replace"))
    assert_no_traceback(daemon_log(home))


@pytest.mark.parametrize("mode", MODES.values(), ids=MODES.keys())
async def test_shutdown_then_exit_with_a_chat_in_flight_ends_cleanly(
    launch: Any, home: Path, openai_fake: FakeServer, mode: list[str]
) -> None:
    env = isolated_env(home)
    merge_user_config(
        env,
        {
            "chat": {"providers": ["openai"]},
            "providers": {"openai": {"base_url": openai_fake.base_url + "/v1"}},
        },
    )
    openai_fake.script.queue(Reply(text="Still talking", hold_open=True))
    client: RawClient = await launch(mode, {"OPENAI_API_KEY": "sk-test"})
    await client.initialize()
    chat = {"command": "reaper.chat", "arguments": [{"prompt": "talk forever"}]}
    client.send(frame(request(5, "workspace/executeCommand", chat)))
    assert await asyncio.to_thread(openai_fake.script.wait_for_requests, 1, TIMEOUT)
    await shutdown_and_exit(client)
    assert openai_fake.script.requests[0].disconnected.wait(TIMEOUT)  # the upstream call too
    assert_no_traceback((home / "stderr.log").read_text(encoding="utf-8", errors="replace"))
    assert_no_traceback(daemon_log(home))
