"""Run a fake's ASGI app with hypercorn in a background thread on 127.0.0.1 (HTTP/1.1, and
HTTP/2 over TLS with a trustme certificate when `tls=True`)."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from tests.fakes.asgi import Receive, Scope, Send


class _CountConnections:
    """ASGI middleware remembering each client address (one per TCP connection)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.clients: set[tuple[str, int]] = set()
        self.lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and client:
            with self.lock:
                self.clients.add((client[0], client[1]))
        await self.app(scope, receive, send)


def _quiet_on_cancel(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Connections cut at shutdown end in CancelledError: expected, not worth a traceback."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


class FakeServer:
    def __init__(self, app: Any, *, tls: bool = False, http2: bool = True) -> None:
        self.app = app
        self.tls = tls
        self.http2 = http2
        self._counter = _CountConnections(app)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="reaper-fake-")
        self.ca_file = ""
        self.port = 0
        self._stopping = False

    @property
    def script(self) -> Any:
        return self.app.script

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def connections_opened(self) -> int:
        with self._counter.lock:
            return len(self._counter.clients)

    def _config(self) -> Config:
        assert self._sock is not None
        config = Config()
        config.bind = [f"fd://{self._sock.fileno()}"]
        config.graceful_timeout = 0
        config.keep_alive_timeout = 60
        config.accesslog = None
        config.errorlog = None
        if self.tls:
            import trustme

            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            tmp = Path(self._tmp.name)
            ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
            cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
            cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
            config.certfile = str(tmp / "cert.pem")
            config.keyfile = str(tmp / "key.pem")
            config.alpn_protocols = ["h2", "http/1.1"] if self.http2 else ["http/1.1"]
            self.ca_file = str(tmp / "ca.pem")
        return config

    def start(self) -> FakeServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = self._config()
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            loop.set_exception_handler(_quiet_on_cancel)
            self._loop = loop
            self._stop = asyncio.Event()
            ready.set()
            try:
                loop.run_until_complete(
                    serve(self._counter, config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]
                )
            except BaseException:
                if not self._stopping:
                    raise
                # stop() cut connections a client kept open: cancellation errors are expected.
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-provider", daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        self._stopping = True
        loop = self._loop
        if loop is not None and self._stop is not None:
            loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(1)
            if self._thread.is_alive() and loop is not None:
                # A client still holds a connection open: do not wait for it to leave.
                def cancel_all() -> None:
                    for task in asyncio.all_tasks(loop):
                        task.cancel()

                loop.call_soon_threadsafe(cancel_all)
                self._thread.join(10)
        if self._sock is not None:
            # hypercorn took over the descriptor (socket(fileno=...)) and closed it itself.
            self._sock.detach()
        self._tmp.cleanup()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
