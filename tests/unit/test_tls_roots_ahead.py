"""The TLS roots are loaded in a thread before the first request needs them: OpenSSL parsing
certifi's bundle (20-70 ms) on the event loop held up the first completion of a fresh daemon,
and every editor it was serving meanwhile."""

from __future__ import annotations

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
