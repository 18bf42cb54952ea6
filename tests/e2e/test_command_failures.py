"""A `workspace/executeCommand` that fails for an ordinary reason — an unknown command, bad
arguments, no provider, a stale code action, a sign-in while offline — is answered with an error
and logged in ONE line on the server's stderr, never with a traceback (a traceback is for bugs)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import isolated_env, merge_user_config
from tests.e2e.test_rpc_faults import (
    RawClient,
    frame,
    server_log,
    start,  # noqa: F401 (a fixture)
)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def offline_config(home: Path) -> None:
    nowhere = f"http://127.0.0.1:{closed_port()}"
    merge_user_config(
        isolated_env(home),
        {
            "chat": {"providers": ["openai"]},
            "providers": {"copilot": {"github_url": nowhere, "github_api_url": nowhere}},
        },
    )


def open_document(client: RawClient, name: str, text: str) -> str:
    uri = (client.workspace / name).as_uri()
    doc = {"uri": uri, "languageId": "python", "version": 3, "text": text}
    client.send(
        frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": doc}})
    )
    return uri


STALE = {"action": "explain", "version": 1, "first": 0, "last": 0}
FAILURES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown command": ({"command": "reaper.nothing"}, "reaper.nothing"),
    "bad arguments": ({"command": "reaper.chat", "arguments": [{"messages": 5}]}, "reaper.chat"),
    "unknown provider": (
        {"command": "reaper.signIn", "arguments": [{"provider": "nowhere"}]},
        "reaper.signIn",
    ),
    "no provider": ({"command": "reaper.chat", "arguments": [{"prompt": "hi"}]}, "reaper.chat"),
    "stale action": ({"command": "reaper.codeAction", "arguments": [STALE]}, "reaper.codeAction"),
    "offline sign-in": (
        {"command": "reaper.signIn", "arguments": [{"provider": "copilot"}]},
        "reaper.signIn",
    ),
}


@pytest.mark.parametrize("params,label", FAILURES.values(), ids=FAILURES.keys())
async def test_a_failed_command_is_logged_in_one_line_without_a_traceback(
    start: Any,  # noqa: F811 (the fixture imported above)
    home: Path,
    params: dict[str, Any],
    label: str,
) -> None:
    offline_config(home)
    client: RawClient = await start()
    await client.initialize()
    if label == "reaper.codeAction":
        uri = open_document(client, "a.py", "x = 1\n")
        params = {**params, "arguments": [{**STALE, "uri": uri}]}
    await client.still_serving(1)
    await asyncio.sleep(0.3)  # the start-up's own lines are written
    before = len(server_log(home).splitlines())

    reply = await client.call(2, "workspace/executeCommand", params)
    assert "error" in reply, reply
    assert "\n" not in reply["error"]["message"] and "data" not in reply["error"]
    await client.still_serving(3)
    await asyncio.sleep(0.3)

    new = server_log(home).splitlines()[before:]
    assert not [line for line in new if "Traceback" in line or line.startswith(" ")], new
    about = [line for line in new if f"{label} failed" in line or "unknown command" in line]
    assert len(about) == 1, new
    assert " ERROR " not in about[0]  # a user's mistake or an outage is not a bug
