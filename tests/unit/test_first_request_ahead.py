"""What a process's first request would do on the event loop is done in a thread ahead of it:
load the TLS roots (OpenSSL parsing certifi's bundle, 20-70 ms), import what httpcore's first
connection imports (~25 ms) and aioquic (80-200 ms). They held up a fresh daemon's first
completion, every editor it served meanwhile, and a 0-RTT answer racing that first TCP
connection."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import replace
from typing import Any

import pytest

from reaper_lsp.net import client as net_client
from reaper_lsp.net.client import Clients
from reaper_lsp.settings import HttpSettings


async def test_prepare_loads_the_roots_off_the_loop_and_get_reuses_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded_on: list[threading.Thread] = []
    build = net_client.ssl_context

    def spy(http: HttpSettings) -> Any:
        loaded_on.append(threading.current_thread())
        return build(http)

    monkeypatch.setattr(net_client, "ssl_context", spy)
    clients = Clients(HttpSettings())
    await clients.prepare()
    clients.get("openai")
    clients.get("claude")
    try:
        assert len(loaded_on) == 1 and loaded_on[0] is not threading.main_thread()
    finally:
        await clients.aclose()


async def test_settings_that_cannot_be_used_are_still_reported_by_the_first_request(
    tmp_path: Any,
) -> None:
    http = HttpSettings()
    broken = replace(http, tls=replace(http.tls, ca_file=str(tmp_path / "missing.pem")))
    clients = Clients(broken)
    await clients.prepare()  # says nothing: the request that needs TLS will
    with pytest.raises(net_client.BadTLSSettings):
        clients.get("openai")


_FIRST_CONNECTION = """
import asyncio, json, socket, sys
import httpx
from reaper_lsp.net import httpcore_internals
if sys.argv[1] == "preload":
    httpcore_internals.preload_first_connection()

async def main():
    before = set(sys.modules)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed again: the attempt is refused
    async with httpx.AsyncClient() as client:
        try:
            await client.get(f"http://127.0.0.1:{port}/")
        except httpx.HTTPError:
            pass
    print(json.dumps(sorted(set(sys.modules) - before)))

asyncio.run(main())
"""


def test_after_the_preload_a_first_connection_imports_nothing_on_the_event_loop() -> None:
    def imported_by_a_first_connection(mode: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", _FIRST_CONNECTION, mode],
            capture_output=True, text=True, check=True, cwd="/",
        )  # fmt: skip
        return list(json.loads(done.stdout))

    assert [m for m in imported_by_a_first_connection("plain") if m.startswith("anyio")]
    assert imported_by_a_first_connection("preload") == []


_QUIC_IMPORT = """
import asyncio, json, socket, sys, threading
import httpx

importers = []

class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "reaper_lsp.net.h3":
            importers.append(threading.current_thread().name)
        return None

sys.meta_path.insert(0, Spy())
from reaper_lsp.net.auto import AutoTransport
from reaper_lsp.net.h3_state import QuicOptions

async def main():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed again: QUIC is refused at once
    auto = AutoTransport(httpx.AsyncHTTPTransport(), mode="http3", quic=QuicOptions())
    async with httpx.AsyncClient(transport=auto) as client:
        try:
            await client.get(f"https://127.0.0.1:{port}/")
        except httpx.HTTPError:
            pass
    print(json.dumps(importers))

asyncio.run(main())
"""


def test_the_first_request_needing_quic_imports_aioquic_off_the_event_loop() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _QUIC_IMPORT], capture_output=True, text=True, check=True, cwd="/"
    )
    assert json.loads(done.stdout) == ["reaper-import-quic"]
