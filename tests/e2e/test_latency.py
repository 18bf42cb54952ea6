"""Latency machinery, by behaviour (timings live in benchmarks/): superseded requests never go
upstream, cancellation resets one HTTP/2 stream and keeps the connection, hedging cancels the
loser, the circuit breaker opens and is reported."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Session, openai_options
from tests.fakes import openai as fake_openai
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

KEY = {"OPENAI_API_KEY": "sk-test"}


@pytest.fixture
def openai_tls() -> Iterator[FakeServer]:
    with FakeServer(fake_openai.create_app(), tls=True) as server:
        yield server


def tls_options(fake: FakeServer, **completion: Any) -> dict[str, Any]:
    options = openai_options(fake)
    options["completion"].update(completion)
    options["http"] = {"tls": {"ca_file": fake.ca_file}}
    return options


async def test_superseded_request_never_reaches_the_provider(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.default = Reply(text="value")
    options = openai_options(openai_fake)
    options["completion"]["debounce_ms"] = 300
    s: Session = await start_session(options, KEY)
    uri = s.open("a.py", "x = \n")
    first = asyncio.ensure_future(s.inline(uri, 0, 4))
    await asyncio.sleep(0.05)
    s.type_text(uri, 0, 4, "v")
    assert await s.inline(uri, 0, 5) == ["value"]
    assert await first == []
    assert len(openai_fake.script.requests) == 1
    assert openai_fake.script.requests[0].body["messages"][-1]["content"].count("x = v<cursor>")


async def test_invoked_request_skips_the_debounce(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.default = Reply(text="1")
    options = openai_options(openai_fake)
    options["completion"]["debounce_ms"] = 5000
    s: Session = await start_session(options, KEY)
    uri = s.open("a.py", "x = \n")
    assert await asyncio.wait_for(s.inline(uri, 0, 4, invoked=True), 3) == ["1"]


async def test_cancel_resets_the_http2_stream_and_keeps_the_connection(
    start_session: Any, openai_tls: FakeServer
) -> None:
    openai_tls.script.queue(Reply(text="slow", hold_open=True), Reply(text="name"))
    s: Session = await start_session(tls_options(openai_tls), KEY)
    uri = s.open("a.py", "def f(name):\n    return \n")
    older = asyncio.ensure_future(s.inline(uri, 1, 11))
    assert await asyncio.to_thread(openai_tls.script.wait_for_requests, 1, 10)
    s.type_text(uri, 1, 11, "n")
    assert await s.inline(uri, 1, 12) == ["name"]
    assert await older == []
    first, second = openai_tls.script.requests
    assert first.http_version == "2" and second.http_version == "2"
    assert await asyncio.to_thread(first.disconnected.wait, 10)
    assert openai_tls.connections_opened == 1  # the stream was reset, not the connection


async def test_concurrent_completions_share_one_connection(
    start_session: Any, openai_tls: FakeServer
) -> None:
    openai_tls.script.default = Reply(text="0", first_byte_delay=0.05)
    s: Session = await start_session(tls_options(openai_tls), KEY)
    uris = [s.open(f"m{i}.py", f"v{i} = \n") for i in range(10)]
    results = await asyncio.gather(*[s.inline(uri, 0, 5, invoked=True) for uri in uris])
    assert all(r == ["0"] for r in results)
    assert openai_tls.connections_opened == 1


async def test_hedging_answers_from_the_second_provider_and_cancels_the_first(
    start_session: Any, openai_fake: FakeServer, ollama_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="late", first_byte_delay=3))
    ollama_fake.script.queue(Reply(text="quick"))
    options = openai_options(openai_fake)
    options["completion"].update(providers=["openai", "ollama"], hedge_ms=100)
    options["providers"]["ollama"] = {"base_url": ollama_fake.base_url}
    s: Session = await start_session(options, KEY)
    uri = s.open("a.py", "x = \n")
    assert await asyncio.wait_for(s.inline(uri, 0, 4), 2) == ["quick"]
    assert await asyncio.to_thread(openai_fake.script.requests[0].disconnected.wait, 10)


async def test_circuit_breaker_opens_and_is_reported(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.default = Reply(status=500)
    options = openai_options(openai_fake)
    options["http"] = {"max_retries": 0}
    s: Session = await start_session(options, KEY)
    uri = s.open("a.py", "x = \n")
    for i in range(4):
        s.type_text(uri, 0, 4 + i, "1")
        await s.inline(uri, 0, 5 + i, invoked=True)
    assert len(openai_fake.script.requests) == 3  # the fourth request skipped the provider
    status = await s.command("reaper.status")
    assert status["providers"]["openai"]["health"]["state"] == "open"
    states = [getattr(p, "state", None) for m, p in s.notifications if m == "reaper/status"]
    assert "open" in states


async def test_connection_is_opened_before_the_first_keystroke(
    start_session: Any, openai_tls: FakeServer
) -> None:
    openai_tls.script.default = Reply(text="1")
    s: Session = await start_session(tls_options(openai_tls), KEY)
    for _ in range(100):
        if openai_tls.script.prewarms:
            break
        await asyncio.sleep(0.05)
    assert openai_tls.script.prewarms == 1 and openai_tls.script.requests == []
    assert openai_tls.connections_opened == 1
    uri = s.open("a.py", "x = \n")
    assert await s.inline(uri, 0, 4, invoked=True) == ["1"]
    assert openai_tls.connections_opened == 1  # the first request used the warm connection


async def test_http1_connection_is_reused_between_requests(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.default = Reply(text="1")
    s: Session = await start_session(openai_options(openai_fake), KEY)
    for _ in range(100):  # let the warm-up finish: HTTP/1.1 cannot share a busy connection
        if openai_fake.script.prewarms:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    uri = s.open("a.py", "a = \nb = \nc = \n")
    for line in range(3):
        assert await s.inline(uri, line, 4, invoked=True) == ["1"]
    assert len(openai_fake.script.requests) == 3
    assert openai_fake.connections_opened == 1
