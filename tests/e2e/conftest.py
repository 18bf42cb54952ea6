"""Start the installed `reaper-lsp` over stdio with pytest-lsp, isolated from the user's real
config and credentials, and start fake providers on 127.0.0.1 for it to talk to."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests import tomlw
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import ollama as fake_ollama
from tests.fakes import openai as fake_openai
from tests.fakes.runner import FakeServer

REAPER_LSP = str(Path(sys.executable).parent / "reaper-lsp")
SERVER_COMMAND = [REAPER_LSP, "--no-daemon"]
"""The server in the test's own process: most tests look at that process (its log, its
memory, a kill). Editors' own tests, and test_daemon.py, go through the forwarder and daemon."""
_runtime: list[Path] = []
"""The runtime folder of the running test: where its daemons put their sockets."""


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment with no provider keys and every user directory inside `home`."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "LANG": "C.UTF-8",
    }
    if _runtime:  # short: a socket path must fit in 107 bytes
        env["XDG_RUNTIME_DIR"] = str(_runtime[-1])
    env.update(extra)
    return env


def stop_daemons(folder: Path) -> None:
    """Stop every daemon listening in `folder` (a test's runtime folder) and wait for it."""
    from reaper_lsp.daemon.protocol import control

    for socket_path in folder.glob("reaper-lsp/*.sock"):
        try:
            pid = control(str(socket_path), "stop").get("pid")
        except Exception:
            continue
        for _ in range(100):
            if not isinstance(pid, int) or not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.05)


@pytest.fixture(autouse=True)
def runtime_dir() -> Iterator[Path]:
    """A runtime folder of this test's own (XDG_RUNTIME_DIR in `isolated_env`): daemons an
    editor test starts live there, and are stopped when the test ends."""
    folder = Path(tempfile.mkdtemp(prefix="rl", dir="/tmp"))
    folder.chmod(0o700)
    _runtime.append(folder)
    try:
        yield folder
    finally:
        _runtime.remove(folder)
        stop_daemons(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


def _serve(create_app: Callable[[], Any], tls: bool = False) -> Iterator[FakeServer]:
    server = FakeServer(create_app(), tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def openai_fake() -> Iterator[FakeServer]:
    yield from _serve(fake_openai.create_app)


@pytest.fixture
def anthropic_fake() -> Iterator[FakeServer]:
    yield from _serve(fake_anthropic.create_app)


@pytest.fixture
def ollama_fake() -> Iterator[FakeServer]:
    yield from _serve(fake_ollama.create_app)


class Session:
    """A running server plus helpers for the common LSP exchanges."""

    def __init__(self, client: LanguageClient, workspace: Path) -> None:
        self.client = client
        self.workspace = workspace
        self.notifications: list[tuple[str, Any]] = []
        self._versions: dict[str, int] = {}

    def uri(self, name: str) -> str:
        return (self.workspace / name).as_uri()

    def open(self, name: str, text: str, language: str = "python") -> str:
        uri = self.uri(name)
        self._versions[uri] = 1
        self.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, language, 1, text))
        )
        return uri

    def type_text(self, uri: str, line: int, character: int, text: str) -> None:
        """Insert `text` at (line, character) as an editor sends a keystroke."""
        self._versions[uri] += 1
        at = lsp.Position(line, character)
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(version=self._versions[uri], uri=uri),
                [lsp.TextDocumentContentChangePartial(lsp.Range(at, at), text)],
            )
        )

    async def inline(
        self, uri: str, line: int, character: int, *, invoked: bool = False
    ) -> list[str]:
        kind = (
            lsp.InlineCompletionTriggerKind.Invoked
            if invoked
            else lsp.InlineCompletionTriggerKind.Automatic
        )
        result = await self.client.text_document_inline_completion_async(
            lsp.InlineCompletionParams(
                context=lsp.InlineCompletionContext(trigger_kind=kind),
                text_document=lsp.TextDocumentIdentifier(uri),
                position=lsp.Position(line, character),
            )
        )
        assert isinstance(result, lsp.InlineCompletionList), result
        return [str(item.insert_text) for item in result.items]

    async def menu(self, uri: str, line: int, character: int) -> lsp.CompletionList:
        result = await self.client.text_document_completion_async(
            lsp.CompletionParams(
                text_document=lsp.TextDocumentIdentifier(uri),
                position=lsp.Position(line, character),
            )
        )
        assert isinstance(result, lsp.CompletionList), result
        return result

    async def command(self, name: str, *args: Any) -> Any:
        return await self.client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(command=name, arguments=list(args))
        )


StartSession = Callable[..., "asyncio.Future[Session]"]


@pytest_asyncio.fixture
async def start_session(home: Path, workspace: Path) -> AsyncIterator[Callable[..., Any]]:
    """`await start_session(init_options, env)` → a Session; every one is shut down after."""
    sessions: list[Session] = []

    async def start(
        init_options: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        client: str = "neovim",
        args: list[str] | None = None,
        user_config: dict[str, Any] | None = None,
        daemon: bool = False,
    ) -> Session:
        """`init_options` as an editor would send them, except what only the user's config
        file may set, which goes there (with `user_config`). `daemon`: start `reaper-lsp` as
        editors do (the forwarder, and the test's own daemon) instead of in-process."""
        server_env = isolated_env(home, **(env or {}))
        editor_options, user_options = tomlw.split(init_options or {})
        if user_options or user_config:  # endpoints and keys come only from the user's file
            merge_user_config(server_env, _merged(user_options, user_config or {}))
        command = [REAPER_LSP] if daemon else SERVER_COMMAND
        config = ClientServerConfig(
            server_command=[*command, *(args or [])],
            server_env=server_env,
        )
        lsp_client = await config.start()
        assert isinstance(lsp_client, LanguageClient)
        session = Session(lsp_client, workspace)

        @lsp_client.feature("reaper/status")
        def on_status(params: Any) -> None:
            session.notifications.append(("reaper/status", params))

        @lsp_client.feature("reaper/chatDelta")
        def on_chat(params: Any) -> None:
            session.notifications.append(("reaper/chatDelta", params))

        await lsp_client.initialize_session(
            lsp.InitializeParams(
                capabilities=client_capabilities(client),
                root_uri=workspace.as_uri(),
                workspace_folders=[lsp.WorkspaceFolder(workspace.as_uri(), "project")],
                initialization_options=editor_options,
            )
        )
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        try:
            await asyncio.wait_for(session.client.shutdown_session(), 10)
        finally:
            await session.client.stop()


def user_config_file(env: dict[str, str]) -> Path:
    """The user config file a server started with `env` reads."""
    explicit = env.get("REAPER_CONFIG", "").strip()
    if explicit:
        return Path(explicit)
    return Path(env["XDG_CONFIG_HOME"]) / "reaper-lsp" / "reaper.toml"


def _merged(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merged(into[key], value)
        else:
            into[key] = value
    return into


def merge_user_config(env: dict[str, str], options: dict[str, Any]) -> Path:
    """Lay `options` over the user config file the server will read (made if absent)."""
    path = user_config_file(env)
    current: dict[str, Any] = {}
    if path.is_file():
        current = tomllib.loads(path.read_text(encoding="utf-8"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomlw.dumps(_merged(current, options)), encoding="utf-8")
    return path


def openai_options(fake: FakeServer, **extra: Any) -> dict[str, Any]:
    return {
        "completion": {"providers": ["openai"], "debounce_ms": 0, "prefetch": False},
        "providers": {"openai": {"base_url": fake.base_url + "/v1", **extra}},
    }
