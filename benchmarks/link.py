"""The 50 ms round trip the network benchmarks run through, and the fakes on its far side.

`../shared/tools/delay_link.py` (root) joins two network namespaces through a delayed link.
`DelayLink` starts it under namespace names of this run's own (other benchmarks may hold the
default ones) and `Fakes` serves, in the far namespace (`python -m benchmarks.link --serve`),
the fake OpenAI provider over HTTP/1.1 + HTTP/2 with TLS advertising HTTP/3 by Alt-Svc, the
aioquic HTTP/3 fake that issues session tickets, a second such pair (the "decoy", for warming a
process up on another origin), and a TCP server advertising a UDP port that swallows every
datagram (UDP blocked). reaper-lsp runs in the near namespace under `ip netns exec`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DELAY_LINK = Path(
    os.environ.get("REAPER_DELAY_LINK", ROOT.parent / "shared" / "tools" / "delay_link.py")
)
SERVER_ADDRESS = "10.231.7.2"
ONE_WAY_MS = 25.0
RTT_MS = 2 * ONE_WAY_MS
ANSWER = "value + 1"
"""What the fake provider completes every request with."""


class Unavailable(Exception):
    """The link cannot run here; the message says why (the benchmark is skipped)."""


def missing_requirement() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces and TUN devices)"
    if shutil.which("ip") is None or not Path("/dev/net/tun").exists():
        return "needs iproute2 (`ip`) and /dev/net/tun"
    if not DELAY_LINK.exists():
        return f"{DELAY_LINK} is missing (set REAPER_DELAY_LINK)"
    return None


def _spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, **kwargs)


async def _line(stream: Any, timeout: float) -> str:
    return str(await asyncio.wait_for(asyncio.to_thread(stream.readline), timeout))


class DelayLink:
    """`async with DelayLink() as link:` two namespaces `link.client` and `link.server`, and
    the fakes served in the latter (`link.where`: their ports and CA file)."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.client, self.server = f"rlb{tag}c", f"rlb{tag}s"
        self.where: dict[str, Any] = {}
        self._link: subprocess.Popen[str] | None = None
        self._fakes: subprocess.Popen[str] | None = None

    def netns(self, *command: str) -> list[str]:
        """`command` run in the client namespace."""
        return ["ip", "netns", "exec", self.client, *command]

    def url(self, name: str) -> str:
        """The fake OpenAI base URL of one of the served sites (`tcp`, `h3`, `blocked`...)."""
        return f"https://{SERVER_ADDRESS}:{self.where[name]}/v1"

    @property
    def ca(self) -> str:
        return str(self.where["ca"])

    async def __aenter__(self) -> DelayLink:
        if (reason := missing_requirement()) is not None:
            raise Unavailable(reason)
        self._link = _spawn(
            [sys.executable, str(DELAY_LINK), "--delay-ms", str(ONE_WAY_MS),
             "--ns-a", self.client, "--ns-b", self.server],
            stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            if (await _line(self._link.stdout, 15)).strip() != "READY":
                self._link.wait(5)
                error = self._link.stderr.read() if self._link.stderr else ""
                raise Unavailable(f"delay_link.py did not start: {error.strip()[-300:]}")
            self._fakes = _spawn(
                ["ip", "netns", "exec", self.server, sys.executable, "-m", "benchmarks.link",
                 "--serve"],
                stdin=subprocess.PIPE, cwd=ROOT,
            )  # fmt: skip
            self.where = json.loads(await _line(self._fakes.stdout, 30))
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._fakes is not None and self._fakes.stdin is not None:
            self._fakes.stdin.close()
            try:
                self._fakes.wait(10)
            except subprocess.TimeoutExpired:
                self._fakes.kill()
        if self._link is not None:
            self._link.send_signal(signal.SIGTERM)
            self._link.wait(10)


# -- the server side (runs inside the server namespace) -------------------------------------------


def serve() -> None:
    """Serve the fakes on SERVER_ADDRESS; print where as one JSON line; stop at stdin's end."""
    import trustme
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    import tests.fakes.h3 as fake_h3
    from tests.fakes import openai
    from tests.fakes.script import Reply

    # The HTTP/3 fake listens on loopback; in this namespace it must listen on the link.
    quic_serve = fake_h3.serve
    fake_h3.serve = lambda _host, port, **kw: quic_serve(SERVER_ADDRESS, port, **kw)  # type: ignore[assignment]

    class OnTheLink(fake_h3.H3FakeServer):
        def _configuration(self) -> Any:
            from aioquic.h3.connection import H3_ALPN
            from aioquic.quic.configuration import QuicConfiguration

            cert = self.ca.issue_cert(SERVER_ADDRESS)
            tmp = Path(self._tmp.name)
            cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
            cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
            config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
            config.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
            return config

    app = openai.create_app()
    app.script.default = Reply(text=ANSWER)
    ca = trustme.CA()
    tmp = Path(tempfile.mkdtemp(prefix="reaper-link-"))
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    cert = ca.issue_cert(SERVER_ADDRESS)
    cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    h3 = OnTheLink(fake_h3.Routes({"/v1/": app}), ca=ca).start()
    decoy_h3 = OnTheLink(fake_h3.Routes({"/v1/": app}), ca=ca).start()
    black_hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # UDP "blocked": no answer
    black_hole.bind((SERVER_ADDRESS, 0))

    def listener() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((SERVER_ADDRESS, 0))
        sock.listen(128)
        return sock

    def config(sock: socket.socket) -> Config:
        c = Config()
        c.bind = [f"fd://{sock.fileno()}"]
        c.certfile, c.keyfile = str(tmp / "cert.pem"), str(tmp / "key.pem")
        c.alpn_protocols = ["h2", "http/1.1"]
        c.accesslog = c.errorlog = None
        c.graceful_timeout = 0
        c.keep_alive_timeout = 120
        return c

    advertising, blocked, decoy = listener(), listener(), listener()
    print(
        json.dumps(
            {
                "tcp": advertising.getsockname()[1],
                "blocked": blocked.getsockname()[1],
                "h3": h3.port,
                "decoy_tcp": decoy.getsockname()[1],
                "decoy_h3": decoy_h3.port,
                "ca": str(tmp / "ca.pem"),
            }
        ),
        flush=True,
    )

    def quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not isinstance(context.get("exception"), asyncio.CancelledError):
            loop.default_exception_handler(context)  # (cancelled: connections cut at the end)

    async def main() -> None:
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(quiet)
        threading.Thread(
            target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(done.set)), daemon=True
        ).start()
        sites = [(h3.port, advertising), (black_hole.getsockname()[1], blocked)]
        sites.append((decoy_h3.port, decoy))
        await asyncio.gather(
            *(
                hypercorn_serve(
                    fake_h3.AltSvc(app, port),  # type: ignore[arg-type]
                    config(sock),
                    shutdown_trigger=done.wait,  # type: ignore[arg-type]
                )
                for port, sock in sites
            )
        )

    try:
        with contextlib.suppress(asyncio.CancelledError):  # connections cut at the end
            asyncio.run(main())
    finally:
        h3.stop()
        decoy_h3.stop()
        black_hole.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        sys.exit("usage: python -m benchmarks.link --serve (started by the network benchmarks)")
