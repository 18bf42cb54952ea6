"""Fault-table rows 1-5 and 19 end to end: raw bytes written to the server process's stdin,
frames read back from its stdout, and after every fault the process still answers."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from reaper_lsp.lsp import server as reaper_server
from reaper_lsp.lsp.rpc import GuardedProtocol
from tests.e2e.conftest import SERVER_COMMAND, isolated_env
from tests.fakes.runner import FakeServer

# The real entry point once server.py's protocol derives from GuardedProtocol; until then the
# same CLI with that base swapped in. `--faulty` adds two commands that fail like a bug would.
LAUNCHER = """
import sys
import reaper_lsp.lsp.features as features
import reaper_lsp.lsp.server as server
from reaper_lsp.lsp.rpc import GuardedProtocol
if not issubclass(server.ReaperProtocol, GuardedProtocol):
    server.ReaperProtocol = type("ReaperProtocol", (GuardedProtocol, server.ReaperProtocol), {})
if "--faulty" in sys.argv:
    sys.argv.remove("--faulty")
    real = features.create_server
    def create_server(host=None):
        ls = real(host)
        @ls.command("test.explode")
        async def explode(ls, *args):
            return {}["no such key"]
        @ls.command("test.exhaust")
        def exhaust(ls, *args):
            return bytearray(1 << 62)
        return ls
    features.create_server = create_server
from reaper_lsp.cli import main
sys.exit(main(sys.argv[1:]))
"""
WIRED = issubclass(reaper_server.ReaperProtocol, GuardedProtocol)
TIMEOUT = 15


def frame(payload: object) -> bytes:
    body = json.dumps(payload).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def request(msg_id: int | str, method: str, params: object = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


def status_request(msg_id: int) -> dict[str, Any]:
    return request(msg_id, "workspace/executeCommand", {"command": "reaper.status"})


class RawClient:
    """An LSP client that writes whatever bytes a test gives it."""

    def __init__(self, process: asyncio.subprocess.Process, workspace: Path) -> None:
        self.process = process
        self.workspace = workspace
        self.seen: list[dict[str, Any]] = []

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)

    async def next_message(self) -> dict[str, Any]:
        out = self.process.stdout
        assert out is not None
        header = await asyncio.wait_for(out.readuntil(b"\r\n\r\n"), TIMEOUT)
        fields = dict(line.split(b": ", 1) for line in header.strip().split(b"\r\n"))
        body = await out.readexactly(int(fields[b"Content-Length"]))
        message: dict[str, Any] = json.loads(body)
        self.seen.append(message)
        if "method" in message and "id" in message:  # a request to us: say yes, with nothing
            self.send(frame({"jsonrpc": "2.0", "id": message["id"], "result": None}))
        return message

    async def answer(self, msg_id: object) -> dict[str, Any]:
        while True:
            message = await self.next_message()
            if message.get("id") == msg_id and "method" not in message:
                return message

    async def call(self, msg_id: int, method: str, params: object = None) -> dict[str, Any]:
        self.send(frame(request(msg_id, method, params)))
        return await self.answer(msg_id)

    async def initialize(self) -> None:
        uri = self.workspace.as_uri()
        params = {
            "processId": None,
            "capabilities": {},
            "rootUri": uri,
            "initializationOptions": {},
        }
        assert "result" in await self.call(0, "initialize", params)
        self.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))

    async def still_serving(self, msg_id: int = 1000) -> None:
        reply = await self.call(msg_id, "workspace/executeCommand", {"command": "reaper.status"})
        assert isinstance(reply.get("result"), dict), reply
        assert self.process.returncode is None


@pytest_asyncio.fixture
async def start(home: Path, workspace: Path) -> AsyncIterator[Any]:
    clients: list[RawClient] = []

    async def launch(
        *, faulty: bool = False, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> RawClient:
        if WIRED and not faulty:
            command = [*SERVER_COMMAND, *args, "--log-level", "debug"]
        else:
            command = [sys.executable, "-c", LAUNCHER, "--no-daemon", *args, "--log-level", "debug"]
            command += ["--faulty"] if faulty else []
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=(home / "server.log").open("ab"),
            env=isolated_env(home, **(env or {})),
            cwd=workspace,
            limit=1 << 24,
        )
        client = RawClient(process, workspace)
        clients.append(client)
        return client

    yield launch
    for client in clients:
        if client.process.returncode is None:
            client.process.kill()
        await client.process.wait()


def peak_memory_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def server_log(home: Path) -> str:
    return (home / "server.log").read_text(encoding="utf-8", errors="replace")


BODY = json.dumps(status_request(7)).encode()
BAD_FRAMES = {
    "length too small": b"Content-Length: 10\r\n\r\n" + BODY,
    "length too large": b"Content-Length: %d\r\n\r\n" % (len(BODY) + 500) + BODY,
    "length missing": b"Content-Type: application/vscode-jsonrpc\r\n\r\n" + BODY,
    "header in lower case": b"content-length: %d\r\n\r\n" % len(BODY) + BODY,
    "length abc": b"Content-Length: abc\r\n\r\n" + BODY,
    "length 0": b"Content-Length: 0\r\n\r\n" + BODY,
    "length -5": b"Content-Length: -5\r\n\r\n" + BODY,
    "garbage between frames": b"\x00\xff garbage\r\n\r\n{}\r\n",
}


@pytest.mark.parametrize("bad", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_row1_after_a_bad_frame_the_next_request_is_answered(start: Any, bad: bytes) -> None:
    client: RawClient = await start()
    await client.initialize()
    client.send(bad + frame(status_request(8)))
    await client.answer(8)
    # The bad frame's own request is answered when its body was whole, or gets a parse error.
    for message in client.seen:
        if message.get("id") not in (None, 0, 7, 8):
            pytest.fail(f"unexpected answer {message}")
    await client.still_serving()


async def test_row1_a_too_large_length_is_answered_when_the_client_pauses(start: Any) -> None:
    client: RawClient = await start()
    await client.initialize()
    client.send(BAD_FRAMES["length too large"])  # and nothing more: the client waits
    assert isinstance((await client.answer(7))["result"], dict)
    await client.still_serving()


async def test_row2_a_terabyte_content_length_is_dropped_in_constant_memory(start: Any) -> None:
    client: RawClient = await start()
    await client.initialize()
    await client.still_serving(1)
    pid = client.process.pid
    client.send(b"Content-Length: 1000000000000\r\n\r\n")
    chunk = b'{"jsonrpc": "2.0", ' + b"x" * (1 << 20)
    for _ in range(150):  # 150 MB of a body the server must not keep
        client.send(chunk)
        assert client.process.stdin is not None
        await client.process.stdin.drain()
    client.send(frame(status_request(2)))
    reply = await client.answer(2)
    assert isinstance(reply["result"], dict)
    peak_kb = peak_memory_kb(pid)
    assert peak_kb < 150 * 1024, f"peak resident memory {peak_kb} kB"
    await client.still_serving()


INVALID = {
    "negative line": ("textDocument/completion", {"line": -1, "character": 0}, "line"),
    "line 2^31": ("textDocument/inlineCompletion", {"line": 2**31, "character": 0}, "line"),
    "character 2^53": ("textDocument/completion", {"line": 0, "character": 2**53}, "character"),
    "line is text": ("textDocument/completion", {"line": "one", "character": 0}, "line"),
}


@pytest.mark.parametrize("method,position,field", INVALID.values(), ids=INVALID.keys())
async def test_row3_a_bad_position_is_answered_invalid_params(
    start: Any, method: str, position: dict[str, object], field: str
) -> None:
    client: RawClient = await start()
    await client.initialize()
    uri = (client.workspace / "a.py").as_uri()
    params: dict[str, Any] = {"textDocument": {"uri": uri}, "position": position}
    if method.endswith("inlineCompletion"):
        params["context"] = {"triggerKind": 1}
    error = (await client.call(3, method, params))["error"]
    assert error["code"] == -32602
    assert "params.position" in error["message"] and field in error["message"]
    await client.still_serving()


@pytest.mark.parametrize("params", [{}, None, {"command": 5}, []], ids=["{}", "null", "5", "[]"])
async def test_row3_execute_command_with_bad_params_is_answered_invalid_params(
    start: Any, params: object
) -> None:
    client: RawClient = await start()
    await client.initialize()
    error = (await client.call(3, "workspace/executeCommand", params))["error"]
    assert error["code"] == -32602
    assert "command" in error["message"].lower()
    await client.still_serving()


async def test_row4_requests_before_initialize_are_refused_and_nothing_is_sent(
    start: Any, home: Path, openai_fake: FakeServer
) -> None:
    config = home / "config" / "reaper-lsp" / "reaper.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        '[completion]\nproviders = ["openai"]\ndebounce_ms = 0\n'
        f'[providers.openai]\nbase_url = "{openai_fake.base_url}/v1"\n'
    )
    client: RawClient = await start(env={"OPENAI_API_KEY": "sk-test-before-init"})
    uri = (client.workspace / "a.py").as_uri()
    doc = {"uri": uri, "languageId": "python", "version": 1, "text": "def f():\n    return "}
    client.send(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen",
                       "params": {"textDocument": doc}}))  # fmt: skip
    position = {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 11}}
    inline = position | {"context": {"triggerKind": 1}}
    refused = [
        await client.call(1, "textDocument/inlineCompletion", inline),
        await client.call(2, "textDocument/completion", position),
        await client.call(3, "workspace/executeCommand", {"command": "reaper.status"}),
    ]
    assert [r["error"]["code"] for r in refused] == [-32002] * 3
    assert client.seen == refused  # no notification, no log message, nothing else
    await asyncio.sleep(0.5)
    assert openai_fake.script.requests == [] and openai_fake.script.prewarms == 0
    assert openai_fake.connections_opened == 0
    await client.initialize()
    await client.still_serving()


async def test_row5_requests_after_shutdown_are_invalid_and_exit_ends_the_process(
    start: Any,
) -> None:
    client: RawClient = await start()
    await client.initialize()
    assert (await client.call(1, "shutdown"))["result"] is None
    after = await client.call(2, "workspace/executeCommand", {"command": "reaper.status"})
    assert after["error"]["code"] == -32600
    assert (await client.call(3, "shutdown"))["error"]["code"] == -32600
    client.send(frame({"jsonrpc": "2.0", "method": "exit"}))
    assert await asyncio.wait_for(client.process.wait(), TIMEOUT) == 0


def assert_clean(error: dict[str, Any]) -> None:
    text = json.dumps(error)
    assert "Traceback" not in text and 'File "' not in text and "traceback" not in text
    assert "data" not in error or error["data"] is None
    assert "\n" not in error["message"] and len(error["message"]) <= 300


async def test_row19_errors_from_commands_carry_no_traceback(start: Any) -> None:
    client: RawClient = await start()
    await client.initialize()
    calls = [
        {"command": "reaper.chat", "arguments": [{"messages": 5}]},
        {"command": "reaper.chat", "arguments": [{"messages": [{"role": 1}]}]},
        {"command": "reaper.signIn", "arguments": [{"provider": "nowhere"}]},
        {"command": "reaper.nothing"},
    ]
    for n, params in enumerate(calls, 1):
        reply = await client.call(n, "workspace/executeCommand", params)
        assert "error" in reply, (params, reply)
        assert_clean(reply["error"])
    await client.still_serving()


async def test_row19_a_crashing_handler_and_memory_error_are_answered_cleanly(
    start: Any, home: Path
) -> None:
    client: RawClient = await start(faulty=True)
    await client.initialize()
    crash = await client.call(1, "workspace/executeCommand", {"command": "test.explode"})
    assert crash["error"]["code"] == -32803
    assert crash["error"]["message"] == "test.explode failed: KeyError: 'no such key'"
    assert_clean(crash["error"])
    memory = await client.call(2, "workspace/executeCommand", {"command": "test.exhaust"})
    assert memory["error"] == {"code": -32803, "message": "test.exhaust failed: out of memory"}
    await client.still_serving()
    assert "KeyError" in server_log(home)  # the traceback is logged, not sent


async def test_tcp_mode_uses_the_same_reader(start: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client: RawClient = await start(args=("serve", "--tcp", f"127.0.0.1:{port}"))
    for _ in range(100):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        pytest.fail("the server never listened")
    init = request(1, "initialize", {"processId": None, "capabilities": {}})
    writer.write(b"content-length: abc\r\n\r\n{}" + frame(init))
    header = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    length = int(header.split(b"\r\n")[0].split(b": ")[1])
    answer = json.loads(await reader.readexactly(length))
    assert answer["id"] == 1 and "capabilities" in answer["result"]
    writer.close()
    assert client.process.returncode is None
