"""HTTP/3 end to end: the real `reaper-lsp` process over stdio against an HTTP/2 fake that
advertises an aioquic HTTP/3 fake with `Alt-Svc` (real UDP on 127.0.0.1). Discovery, 0-RTT in a
new process, rejected early data, a closed UDP port, cancellation over QUIC, a connection
dropped mid-stream, and certificates."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp

from tests.e2e.conftest import Session, isolated_env, merge_user_config, openai_options
from tests.fakes import openai
from tests.fakes.h3 import AltSvc, H3FakeServer, H3Request, Routes, write_bundle
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

KEY = {"OPENAI_API_KEY": "sk-test"}


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Pair:
    """The OpenAI fake served twice: over HTTP/2 (TLS, advertising h3 at `h3_port`, by default
    the HTTP/3 fake's) and over HTTP/3. One CA bundle trusts both."""

    def __init__(self, tmp: Path, *, h3_port: int | None = None) -> None:
        self.openai = openai.create_app()
        self.h3 = H3FakeServer(Routes({"/v1/": self.openai})).start()
        self.advertised = self.h3.port if h3_port is None else h3_port
        self.tcp = FakeServer(AltSvc(self.openai, self.advertised), tls=True).start()
        self.ca_file = write_bundle(tmp / "ca.pem", self.tcp.ca_file, self.h3.ca_file)

    def options(self, **http: Any) -> dict[str, Any]:
        options = openai_options(self.tcp)
        options["http"] = {"tls": {"ca_file": self.ca_file}, **http}
        return options

    def posts(self) -> list[H3Request]:
        """The completion requests that arrived over HTTP/3 (warm-ups are GETs)."""
        return [r for r in self.h3.requests if r.method == "POST"]

    def versions(self) -> list[str]:
        """The HTTP version of each completion request, in order, whichever fake carried it."""
        return [r.http_version for r in self.openai.script.requests]

    def stop(self) -> None:
        self.tcp.stop()
        self.h3.stop()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    pair = Pair(tmp_path)
    yield pair
    pair.stop()


async def _complete(s: Session) -> list[str]:
    """One completion in a document of its own (the same one twice would hit the cache)."""
    n = len(s._versions)
    uri = s.open(f"greet{n}.py", f"def greet{n}(name):\n    return \n")
    return await s.inline(uri, 1, 11, invoked=True)


async def _discover(s: Session, pair: Pair) -> None:
    """Complete until a completion has travelled over HTTP/3 (the first goes over HTTP/2 and
    teaches the server the h3 endpoint)."""
    for _ in range(4):
        await _complete(s)
        if pair.posts():
            return
    raise AssertionError(f"no completion reached HTTP/3: {pair.versions()}")


async def _second_process(start_session: Any, pair: Pair, home: Path) -> Session:
    """A new server process on the same data directory (tickets, learned Alt-Svc). Its key
    arrives after start-up, so no warm-up opens a connection before the first completion
    (`_complete_first` checks that)."""
    options = pair.options()
    options["providers"]["openai"]["api_key_env"] = "REAPER_TEST_UNSET"
    options["chat"] = {"providers": ["openai"]}
    s: Session = await start_session(options, {})
    await asyncio.sleep(0.5)  # start-up (and its warm-up of usable providers) is over
    # The user adds the key to their config file; the editor's next settings change reloads it.
    merge_user_config(isolated_env(home), {"providers": {"openai": {"api_key": "sk-test"}}})
    s.client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings={}))
    return s


async def _complete_first(s: Session, pair: Pair) -> list[str]:
    """The first completion of a `_second_process`, which must be its first request."""
    warm_ups = pair.openai.script.prewarms
    answer = await _complete(s)
    assert pair.openai.script.prewarms == warm_ups, "a warm-up opened the connection first"
    return answer


async def _transport(s: Session) -> dict[str, Any]:
    status = await s.command("reaper.status")
    [origin] = status["transports"]["openai"]["origins"].values()
    return dict(origin)


async def test_alt_svc_discovery_moves_completions_to_http3(start_session: Any, pair: Pair) -> None:
    pair.openai.script.default = Reply(text="name.title()")
    s: Session = await start_session(pair.options(), KEY)
    answers = [await _complete(s) for _ in range(3)]
    assert answers == [["name.title()"]] * 3
    versions = pair.versions()
    assert versions[0] == "2" and versions[-1] == "3"
    assert len(pair.posts()) == versions.count("3")  # the HTTP/3 fake carried those
    transport = await _transport(s)
    assert transport["protocol"] == "HTTP/3" and transport["handshakes"] == 1
    status = await s.command("reaper.status")
    assert status["transports"]["openai"]["h3"]  # the learned endpoint is shown too


async def test_a_second_process_sends_its_first_completion_in_0rtt(
    start_session: Any, pair: Pair, home: Path
) -> None:
    pair.openai.script.default = Reply(text="name.title()")
    await _discover(await start_session(pair.options(), KEY), pair)
    seen = len(pair.h3.requests)
    second = await _second_process(start_session, pair, home)
    assert await _complete_first(second, pair) == ["name.title()"]
    [request] = pair.h3.requests[seen:]
    assert request.method == "POST" and request.early and request.resumed
    transport = await _transport(second)
    assert transport["lastUsed0rtt"] is True and transport["earlyDataAccepted"] == 1
    # (When the answer is slower than the head start, TCP is asked too and the first answer
    # wins; the QUIC copy above arrived either way.)


@pytest.mark.parametrize("refusal", ["rejected", "too early"])
async def test_refused_early_data_is_retried_at_1rtt_with_one_answer(
    start_session: Any, pair: Pair, refusal: str, home: Path
) -> None:
    pair.openai.script.default = Reply(text="name.title()")
    await _discover(await start_session(pair.options(), KEY), pair)
    seen, answered = len(pair.h3.requests), len(pair.openai.script.requests)
    if refusal == "rejected":
        pair.h3.reject_early_data = True  # the server ignores the ticket: 0-RTT data is lost
    else:
        pair.h3.too_early = True  # the server reads the early request and answers 425
    second = await _second_process(start_session, pair, home)
    assert await _complete_first(second, pair) == ["name.title()"]
    arrived = [r.early for r in pair.h3.requests[seen:]]
    # A rejected flight never reaches the application; a 425 is asked again after the
    # handshake. Either way the provider answered exactly once, over HTTP/3.
    assert arrived == ([False] if refusal == "rejected" else [True, False])
    assert "3" in pair.versions()[answered:]
    transport = await _transport(second)
    assert transport["earlyDataSent"] == 1
    if refusal == "rejected":
        assert transport["earlyDataAccepted"] == 0 and transport["lastUsed0rtt"] is False


async def test_closed_udp_port_falls_back_to_http2_and_stops_trying(
    start_session: Any, tmp_path: Path
) -> None:
    pair = Pair(tmp_path, h3_port=_closed_udp_port())
    try:
        pair.openai.script.default = Reply(text="name.title()")
        s: Session = await start_session(pair.options(), KEY)
        timings = []
        for _ in range(4):
            started = time.perf_counter()
            assert await _complete(s) == ["name.title()"]
            timings.append(time.perf_counter() - started)
        assert pair.versions() == ["2"] * 4 and not pair.h3.requests
        status = (await s.command("reaper.status"))["transports"]["openai"]
    finally:
        pair.stop()
    assert next(iter(status["brokenFor"].values())) > 60  # remembered, not retried per request
    assert status["quic"]["handshakes"] == 0
    # After the one failed attempt nothing waits for QUIC: later completions are no slower
    # than the first (generous bounds: the machine may be busy).
    assert max(timings[2:]) < max(timings[0], timings[1]) * 2 + 0.3


async def test_cancel_request_resets_the_quic_stream(start_session: Any, pair: Pair) -> None:
    pair.openai.script.default = Reply(text="name.title()")
    s: Session = await start_session(pair.options(), KEY)
    await _discover(s, pair)
    pair.openai.script.queue(Reply(text="partial", hold_open=True))
    seen = len(pair.h3.requests)
    uri = s.open("held.py", "def held(name):\n    return \n")
    pending = asyncio.ensure_future(s.inline(uri, 1, 11, invoked=True))
    assert await asyncio.to_thread(pair.h3.wait_for_requests, seen + 1, 10)
    request_id = max(s.client.protocol._request_futures)  # the inline request just sent
    s.client.protocol.notify("$/cancelRequest", lsp.CancelParams(id=request_id))
    with pytest.raises(Exception, match="cancel"):
        await pending
    held = pair.h3.requests[seen]
    assert held.method == "POST"
    # The abandoned upstream call is cancelled: its QUIC stream is reset.
    assert await asyncio.to_thread(held.reset.wait, 10), [
        (r.method, r.path, r.reset.is_set()) for r in pair.h3.requests[seen:]
    ]
    assert not pair.openai.script.requests[-1].completed.is_set()


async def test_quic_connection_dropped_mid_stream_falls_back_down_the_chain(
    start_session: Any, pair: Pair, ollama_fake: FakeServer
) -> None:
    pair.openai.script.default = Reply(text="name.title()")
    ollama_fake.script.default = Reply(text="name.upper()")
    options = pair.options(max_retries=0)
    options["completion"]["providers"] = ["openai", "ollama"]
    options["providers"]["ollama"] = {"base_url": ollama_fake.base_url}
    s: Session = await start_session(options, KEY)
    await _discover(s, pair)
    assert not ollama_fake.script.requests
    pair.openai.script.queue(Reply(text="x" * 400, chunk_size=10, chunk_delay=0.01))
    pair.h3.drop_after_bytes = 300
    posts = len(pair.posts())
    assert await _complete(s) == ["name.upper()"]
    assert len(pair.posts()) == posts + 1  # the one the fake dropped mid-stream
    assert len(ollama_fake.script.requests) == 1
    health = (await s.command("reaper.status"))["providers"]["openai"]["health"]
    assert health["failures"] == 1


async def test_untrusted_certificate_is_refused_over_quic_unless_ca_file_trusts_it(
    start_session: Any, pair: Pair
) -> None:
    pair.openai.script.default = Reply(text="name.title()")
    options = openai_options(pair.tcp)
    options["providers"]["openai"]["base_url"] = f"https://127.0.0.1:{pair.h3.port}/v1"
    options["http"] = {"protocol": "http3", "max_retries": 0}  # QUIC or nothing
    untrusting: Session = await start_session(options, KEY)
    assert await _complete(untrusting) != ["name.title()"]  # the offline engine's, if any
    assert not pair.h3.requests  # refused in the handshake: no request was sent
    status = await untrusting.command("reaper.status")
    assert status["providers"]["openai"]["health"]["failures"] == 1
    options["http"]["tls"] = {"ca_file": pair.h3.ca_file}
    trusting: Session = await start_session(options, KEY)
    assert await _complete(trusting) == ["name.title()"]
    assert len(pair.posts()) == 1


async def _never_answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI: read the request, then say nothing until the client goes away."""
    while (await receive())["type"] != "http.disconnect":
        pass


@pytest.fixture
def silent_pair(tmp_path: Path) -> Iterator[Pair]:
    """The OpenAI fake over HTTP/2, advertising a QUIC server that completes every handshake
    and then answers nothing."""
    silent = H3FakeServer(Routes({"/v1/": _never_answer})).start()
    pair = Pair(tmp_path, h3_port=silent.port)
    pair.h3.stop()
    pair.h3 = silent
    pair.ca_file = write_bundle(tmp_path / "ca.pem", pair.tcp.ca_file, silent.ca_file)
    yield pair
    pair.stop()


async def test_a_quic_endpoint_that_never_answers_is_left_for_tcp_even_after_a_restart(
    start_session: Any, silent_pair: Pair
) -> None:
    pair = silent_pair
    pair.openai.script.default = Reply(text="name.title()")
    s: Session = await start_session(pair.options(), KEY)
    timings = []
    for _ in range(4):
        started = time.perf_counter()
        assert await _complete(s) == ["name.title()"]  # the provider's, never the offline one
        timings.append(time.perf_counter() - started)
    assert pair.h3.requests, "QUIC was never tried: the test proves nothing"
    assert len(pair.h3.requests) == 1  # after one silence, QUIC is not asked again
    assert max(timings) < 3.5  # inside the 4 s completion budget, with room for TCP
    status = (await s.command("reaper.status"))["transports"]["openai"]
    assert next(iter(status["brokenFor"].values())) > 60
    # A new process reads that memory: its chat and completion go straight over TCP.
    options = pair.options()
    options["chat"] = {"providers": ["openai"]}
    second: Session = await start_session(options, KEY)
    started = time.perf_counter()
    answer = await second.command("reaper.chat", {"conversationId": "c", "prompt": "hi"})
    assert answer["text"] == "name.title()" and time.perf_counter() - started < 2
    assert await _complete(second) == ["name.title()"]
    assert len(pair.h3.requests) == 1
    status = (await second.command("reaper.status"))["transports"]["openai"]
    assert status["quic"] is None or status["quic"]["handshakes"] == 0
