"""A JSON-RPC client that talks to the server the way the Copilot plugins do: it sends their exact
params as plain JSON (`tests/e2e/copilot_messages.py` builds them) and keeps every answer,
notification and `$/progress` as plain JSON, which the `check_*` validators read. pytest-lsp's
client would turn answers into lsprotocol objects and refuses progress without a `kind` (the
partial results copilot.vim's panel receives)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

from tests.e2e.conftest import SERVER_COMMAND, isolated_env, merge_user_config

TIMEOUT = 20.0


class ServerError(Exception):
    """The server answered a request with an error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RawClient:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.log: Path | None = None
        self.initialize_result: Any = None
        self.notifications: list[tuple[str, Any]] = []
        self.server_requests: list[tuple[str, Any]] = []
        self.arrivals: list[str] = []
        """Methods of the notifications and answers (as "answer:<method>"), in arrival order."""
        self._methods: dict[int, str] = {}
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._arrived = asyncio.Condition()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, command: list[str], env: dict[str, str]) -> RawClient:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            limit=1 << 24,
        )
        return cls(process)

    def _write(self, payload: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        body = json.dumps(payload).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def notify(self, method: str, params: Any) -> None:
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    def send(self, method: str, params: Any) -> asyncio.Future[Any]:
        """A request; the future is its result (or `ServerError`)."""
        msg_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        self._methods[msg_id] = method
        self._write({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return future

    async def request(self, method: str, params: Any) -> Any:
        return await asyncio.wait_for(self.send(method, params), TIMEOUT)

    async def wait_for(
        self, method: str, where: Callable[[Any], bool] = lambda _: True, *, after: int = 0
    ) -> Any:
        """The first notification `method` (from index `after` on) that `where` accepts."""

        def found() -> Any:
            for name, params in self.notifications[after:]:
                if name == method and where(params):
                    return params
            return None

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: found() is not None), TIMEOUT)
        return found()

    def progress(self, token: Any) -> list[Any]:
        return [
            p["value"] for m, p in self.notifications if m == "$/progress" and p["token"] == token
        ]

    async def _read(self) -> None:
        out = self.process.stdout
        assert out is not None
        while True:
            try:
                header = await out.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            fields = dict(line.split(b": ", 1) for line in header.strip().split(b"\r\n"))
            message = json.loads(await out.readexactly(int(fields[b"Content-Length"])))
            await self._dispatch(message)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" not in message:
            self.arrivals.append("answer:" + self._methods.pop(message.get("id"), "?"))  # type: ignore[arg-type]
            future = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
            if future is not None and not future.done():
                error = message.get("error")
                if error is not None:
                    future.set_exception(ServerError(error["code"], error["message"]))
                else:
                    future.set_result(message.get("result"))
            return
        method, params = message["method"], message.get("params")
        if "id" in message:  # a server→client request: answer as Neovim would
            self.server_requests.append((method, params))
            result: Any = None
            if method == "window/showDocument":
                result = {"success": True}
            elif method == "workspace/configuration":
                result = [None for _ in params.get("items", [])]
            self._write({"jsonrpc": "2.0", "id": message["id"], "result": result})
            return
        async with self._arrived:
            self.arrivals.append(method)
            self.notifications.append((method, params))
            self._arrived.notify_all()

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8") if self.log and self.log.exists() else ""

    async def close(self) -> None:
        try:
            if self.process.returncode is None:
                await self.request("shutdown", None)
                self.notify("exit", None)
                await asyncio.wait_for(self.process.wait(), TIMEOUT)
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            self._reader.cancel()


# -- the fixture ------------------------------------------------------------------------------

StartClient = Callable[..., Awaitable[RawClient]]


@pytest_asyncio.fixture
async def start_client(home: Path, tmp_path: Path) -> AsyncIterator[StartClient]:
    """`await start_client(initialize_params, user_config=..., env=...)`: the server (in
    process, its log at INFO in `client.log`) started and initialized with exactly those params,
    `initialized` sent; each one is shut down after the test."""
    clients: list[RawClient] = []

    async def start(
        initialize: dict[str, Any],
        *,
        user_config: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> RawClient:
        server_env = isolated_env(home, **(env or {}))
        merge_user_config(server_env, user_config or {})
        log = tmp_path / f"server-{len(clients)}.log"
        args = ["--log-level", "INFO", "--log-file", str(log)]
        client = await RawClient.start([*SERVER_COMMAND, *args], server_env)
        client.log = log
        clients.append(client)
        client.initialize_result = await client.request("initialize", initialize)
        client.notify("initialized", {})
        return client

    yield start
    for client in clients:
        await client.close()
