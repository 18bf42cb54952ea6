"""The daemon's session host: every editor connection the listener accepts is served by its own
LSP server (`lsp/`) and session, over the one App the daemon keeps warm (`services/`). A
session's crash or slow provider ends or delays that connection only; status notices reach
every session; the log tags each line with its session.

`reaper-lsp daemon` runs `main()`; editors reach it through the forwarder (`forwarder.py`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path

from reaper_lsp import config
from reaper_lsp.daemon.listener import Connection, run_daemon
from reaper_lsp.logs import session_tag
from reaper_lsp.lsp.features import create_server
from reaper_lsp.lsp.rpc import install_log_guard
from reaper_lsp.lsp.server import warm_converter
from reaper_lsp.lsp.transport import CHUNK, serve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from reaper_lsp.services.app import App

log = logging.getLogger(__name__)


class DaemonHost:
    """One App for every connection, built when the first editor arrives, never closed by a
    connection ending."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.app_built: App | None = None

    def app(self, loaded: config.LoadedConfig) -> App:
        if self.app_built is None:
            # Imported only now, as in-process: the first editor's `initialize` answer must
            # not wait for the services (~75 ms), which its handler imports in a thread.
            from reaper_lsp.services.app import App

            self.app_built = App(loaded, env=self.env)
        return self.app_built

    async def close(self) -> None:
        if self.app_built is not None:
            await self.app_built.aclose()


class ConnectionHost:
    """The `lsp.server.Host` of one connection: the daemon's App; ending the connection ends
    nothing shared. What the editor said at `initialize` is shown by `daemon sessions`."""

    def __init__(self, daemon: DaemonHost, connection: Connection) -> None:
        self._daemon = daemon
        self._connection = connection

    @property
    def env(self) -> Mapping[str, str]:
        return self._daemon.env

    def app(self, loaded: config.LoadedConfig) -> App:
        return self._daemon.app(loaded)

    def opened(self, editor: str, roots: list[Path]) -> None:
        root = str(roots[0]) if roots else None
        self._connection.describe(client=editor or "unnamed", root=root)

    async def release(self) -> None:
        """Nothing shared closes: the next editor finds it all warm."""


async def _serve_connection(
    daemon: DaemonHost,
    connection: Connection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    token = session_tag.set(f"s{connection.number}")
    server = create_server(ConnectionHost(daemon, connection))
    server.protocol.set_writer(writer)

    async def read() -> bytes:
        return await reader.read(CHUNK)

    try:
        code = await serve(server, read)
        log.info("session %d ended (exit %d)", connection.number, code)
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]
        writer.close()
        session_tag.reset(token)


def main() -> int:
    """`reaper-lsp daemon`: serve every editor of this user (and environment) until idle."""
    if hasattr(signal, "SIGPIPE"):
        # The command line gives SIGPIPE its default for commands that print (`status |
        # head`); the daemon writes to editors and control clients that may hang up at any
        # moment, and such a write must fail, not kill every session with it.
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    install_log_guard()
    # While the daemon binds and its first editor's handshake arrives: the first messages'
    # (un)structuring code, which that editor's initialize and completion would otherwise
    # wait for.
    threading.Thread(target=warm_converter, name="warm-converter", daemon=True).start()
    daemon = DaemonHost(os.environ)
    settings = config.load(env=daemon.env).user_settings

    async def on_session(
        connection: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await _serve_connection(daemon, connection, reader, writer)

    async def on_control(command: str) -> Mapping[str, object]:
        app = daemon.app_built
        if command == "stop":
            await daemon.close()
        if app is None or command != "status":
            return {}
        return {"cache": {"entries": len(app.cache), **app.cache.stats.as_dict()}}

    return run_daemon(on_session, idle_timeout=settings.daemon.idle_timeout, on_control=on_control)
