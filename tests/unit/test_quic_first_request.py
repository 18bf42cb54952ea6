"""What a new QUIC connection's first request waits for, and what it must not: a slow disk
(the ticket file), a resolver for an address literal, key shares nobody uses, or — when a warm
TCP connection answers slower than the head start — a QUIC handshake that cannot finish in
time. Real UDP on 127.0.0.1 against the aioquic fake, as in test_h3.py."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from aioquic.tls import Group

from reaper_lsp.net import h3_state
from reaper_lsp.net.auto import origin_of
from reaper_lsp.net.h3_conn import KEY_SHARE_GROUPS, FlowControlledQuic
from reaper_lsp.net.h3_state import EARLY_DATA, TICKETS_FILE
from tests.fakes.script import Reply
from tests.unit.test_h3 import SAFE, Fakes, Pair, _black_hole, _chat, _text, _transport

pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number")


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    fakes = Fakes()
    with fakes.h3:
        yield fakes


async def test_a_slow_disk_never_holds_back_the_first_flight(
    fakes: Fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes.openai.script.default = Reply(text="early")
    async with httpx.AsyncClient(transport=_transport(fakes, tmp_path)) as client:
        await _chat(client, fakes.url)  # leaves a ticket on disk
    stored = json.loads((tmp_path / TICKETS_FILE).read_text())

    disk = threading.Event()
    write = h3_state.write_private

    def stuck(path: Path, data: dict[str, Any]) -> None:
        disk.wait(10)
        write(path, data)

    monkeypatch.setattr(h3_state, "write_private", stuck)
    second = _transport(fakes, tmp_path)
    client = httpx.AsyncClient(transport=second)
    try:
        r = await asyncio.wait_for(_chat(client, fakes.url, extensions=SAFE), 5)
        assert _text(r.content) == "early" and r.extensions[EARLY_DATA] is True
        # Answered in 0-RTT while the spent ticket was still being struck from the file.
        assert json.loads((tmp_path / TICKETS_FILE).read_text()) == stored
    finally:
        disk.set()
        await client.aclose()  # waits for the file: the next process finds the new ticket
    assert json.loads((tmp_path / TICKETS_FILE).read_text()) != stored
    assert second.early_data_accepted == 1


async def test_an_address_literal_is_dialled_without_the_resolver(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_resolver(*args: object, **kwargs: object) -> None:
        raise AssertionError("resolved an address literal")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_resolver)
    async with httpx.AsyncClient(transport=_transport(fakes)) as client:
        assert (await _chat(client, fakes.url)).status_code == 200


def test_the_client_hello_offers_key_shares_for_x25519_and_p256_only() -> None:
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="example")
    quic = FlowControlledQuic(window=1 << 20, configuration=config)
    quic.connect(("127.0.0.1", 443), now=0.0)
    offered = quic.tls._supported_groups  # aioquic keeps the groups it sent shares for here
    assert sorted(offered) == sorted(KEY_SHARE_GROUPS)
    assert Group.X448 not in offered and Group.SECP384R1 not in offered


async def test_a_warm_tcp_connection_slower_than_the_head_start_carries_the_request_at_once(
    tmp_path: Path,
) -> None:
    hole = _black_hole(0)  # QUIC never answers: only the head start could cost anything
    pair = Pair(tmp_path, h3_port=hole.getsockname()[1])
    pair.fakes.openai.script.default = Reply(text="slow", first_byte_delay=0.4)
    try:
        auto = pair.auto(tmp_path, head_start=0.3)
        async with httpx.AsyncClient(transport=auto) as client:
            await _chat(client, pair.tcp.base_url)  # learns the h3 endpoint, and TCP's pace
            started = time.perf_counter()
            r = await _chat(client, pair.tcp.base_url)
            elapsed = time.perf_counter() - started
    finally:
        pair.stop()
        hole.close()
    assert r.http_version == "HTTP/2" and _text(r.content) == "slow"
    assert elapsed < 0.4 + 0.25  # the answer's own 0.4 s, not the head start on top of it


async def test_quic_connects_behind_such_a_request_and_takes_the_next_ones(
    tmp_path: Path,
) -> None:
    pair = Pair(tmp_path)
    pair.fakes.openai.script.default = Reply(text="slow", first_byte_delay=0.4)
    try:
        auto = pair.auto(tmp_path, head_start=0.3)
        async with httpx.AsyncClient(transport=auto) as client:
            versions = [(await _chat(client, pair.tcp.base_url)).http_version for _ in range(3)]
    finally:
        pair.stop()
    assert versions == ["HTTP/2", "HTTP/2", "HTTP/3"]
    status = auto.snapshot()["origins"][origin_of(httpx.URL(pair.tcp.base_url))]
    assert status["protocol"] == "HTTP/3" and status["handshakes"] == 1


async def test_a_completion_joins_the_warm_up_opening_a_resumed_connection_in_0rtt(
    tmp_path: Path,
) -> None:
    pair = Pair(tmp_path)
    try:
        async with httpx.AsyncClient(transport=pair.auto(tmp_path)) as client:
            await _chat(client, pair.tcp.base_url)  # learns h3
            await _chat(client, pair.tcp.base_url)  # HTTP/3: a ticket is stored
        before = len(pair.fakes.openai.script.requests)
        fresh = pair.auto(tmp_path, head_start=1.0)  # a fresh daemon: the ticket, no connection
        async with httpx.AsyncClient(transport=fresh) as client:
            warm_up = asyncio.ensure_future(client.get(pair.tcp.base_url + "/v1/models"))
            await asyncio.sleep(0)  # the warm-up takes the ticket and opens the connection
            completion = await _chat(client, pair.tcp.base_url, extensions=SAFE)
            assert (await warm_up).http_version == "HTTP/3"
    finally:
        pair.stop()
    assert completion.http_version == "HTTP/3" and _text(completion.content) == "either way"
    early = [(r.method, r.early) for r in pair.fakes.h3.requests[-2:]]
    assert sorted(early) == [("GET", True), ("POST", True)]  # one resumed connection, 0-RTT
    assert fresh.h3.handshakes == 1
    assert len(pair.fakes.openai.script.requests) == before + 1  # (the h3 POST; no TCP copy)
