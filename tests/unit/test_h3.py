"""HTTP/3 over real UDP on 127.0.0.1: the QUIC transport against the aioquic fake (streams,
cancellation, 0-RTT across processes, rejected early data, dropped connections, certificates),
and AutoTransport's discovery and fallback between an HTTP/2 fake and the HTTP/3 one."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reaper_lsp.net.altsvc import AltSvcCache
from reaper_lsp.net.auto import AutoTransport, origin_of
from reaper_lsp.net.h3 import EARLY_DATA, H3Transport
from reaper_lsp.net.h3_state import TICKETS_FILE, QuicOptions, TicketStore
from tests.fakes import anthropic, openai
from tests.fakes.h3 import AltSvc, H3FakeServer, Routes, write_bundle
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

KEY = {"authorization": "Bearer sk-test"}
CHAT = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
SAFE = {EARLY_DATA: True}
# certifi's bundle holds a root with a negative serial; parsing it (a `cafile` joins the
# system roots) warns on every handshake.
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number")


class Fakes:
    def __init__(self) -> None:
        self.openai = openai.create_app()
        self.anthropic = anthropic.create_app()
        self.h3 = H3FakeServer(
            Routes({"/v1/chat/completions": self.openai, "/v1/messages": self.anthropic})
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.h3.port}"


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    fakes = Fakes()
    with fakes.h3:
        yield fakes


def _transport(fakes: Fakes, state: Path | None = None, **options: object) -> H3Transport:
    return H3Transport(QuicOptions(cafile=fakes.h3.ca_file, state_dir=state, **options))  # type: ignore[arg-type]


def _text(raw: bytes) -> str:
    out = []
    for line in raw.decode().split("\n"):
        if line.startswith("data: {"):
            for choice in json.loads(line[6:])["choices"]:
                out.append(choice["delta"].get("content", ""))
    return "".join(out)


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _chat(client: httpx.AsyncClient, url: str, **kwargs: object) -> httpx.Response:
    return await client.post(url + "/v1/chat/completions", headers=KEY, json=CHAT, **kwargs)  # type: ignore[arg-type]


async def test_concurrent_requests_share_one_connection(fakes: Fakes) -> None:
    fakes.openai.script.default = Reply(text="same answer", chunk_size=3, chunk_delay=0.01)
    transport = _transport(fakes)
    async with httpx.AsyncClient(transport=transport) as client:
        responses = await asyncio.gather(*[_chat(client, fakes.url) for _ in range(20)])
    assert {r.status_code for r in responses} == {200}
    assert {r.http_version for r in responses} == {"HTTP/3"}
    assert all(_text(r.content) == "same answer" for r in responses)
    assert transport.handshakes == 1
    assert len(fakes.h3.requests) == 20


async def test_sse_chunks_arrive_before_the_server_finishes(fakes: Fakes) -> None:
    fakes.openai.script.queue(Reply(text="slow and steady wins", chunk_size=2, chunk_delay=0.1))
    async with (
        httpx.AsyncClient(transport=_transport(fakes)) as client,
        client.stream("POST", fakes.url + "/v1/chat/completions", headers=KEY, json=CHAT) as r,
    ):
        chunks = r.aiter_raw()
        first = await anext(chunks)
        recorded = fakes.openai.script.requests[-1]
        assert first.startswith(b"data: ")
        assert not recorded.completed.is_set()  # the server is still streaming
        rest = b"".join([chunk async for chunk in chunks])
    assert _text(first + rest) == "slow and steady wins"
    assert recorded.completed.wait(5)  # set by the server right after its last frame


async def test_anthropic_events_stream_over_http3(fakes: Fakes) -> None:
    fakes.anthropic.script.queue(Reply(text="bonjour", chunk_size=3))
    body = {"model": "claude-x", "max_tokens": 16, "stream": True, "messages": []}
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(transport=_transport(fakes)) as client:
        r = await client.post(fakes.url + "/v1/messages", headers=headers, json=body)
    events = [line[7:] for line in r.text.split("\n") if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    deltas = [
        json.loads(line[6:])["delta"].get("text", "")
        for line in r.text.split("\n")
        if line.startswith("data: ") and '"content_block_delta"' in line
    ]
    assert "".join(deltas) == "bonjour"


async def test_closing_the_response_early_resets_the_stream(fakes: Fakes) -> None:
    fakes.openai.script.queue(Reply(text="never ending", hold_open=True))
    transport = _transport(fakes)
    async with httpx.AsyncClient(transport=transport) as client:
        async with client.stream(
            "POST", fakes.url + "/v1/chat/completions", headers=KEY, json=CHAT
        ) as r:
            await anext(r.aiter_raw())
        assert await asyncio.to_thread(fakes.h3.requests[-1].reset.wait, 3)
        assert await asyncio.to_thread(fakes.openai.script.requests[-1].disconnected.wait, 3)
        # The connection outlives the cancelled stream.
        fakes.openai.script.queue(Reply(text="next"))
        assert _text((await _chat(client, fakes.url)).content) == "next"
    assert transport.handshakes == 1


async def test_a_new_process_sends_its_first_request_as_early_data(
    fakes: Fakes, tmp_path: Path
) -> None:
    fakes.openai.script.default = Reply(text="fast")
    first = _transport(fakes, tmp_path)
    async with httpx.AsyncClient(transport=first) as client:
        await _chat(client, fakes.url)
    assert (tmp_path / TICKETS_FILE).exists()
    assert not fakes.h3.requests[0].early

    second = _transport(fakes, tmp_path)  # nothing shared but the state directory
    async with httpx.AsyncClient(transport=second) as client:
        r = await _chat(client, fakes.url, extensions=SAFE)
        assert _text(r.content) == "fast"
        assert r.extensions[EARLY_DATA] is True
    assert fakes.h3.requests[1].early
    assert (second.early_data_sent, second.early_data_accepted, second.resumed) == (1, 1, 1)
    assert second.last_used_0rtt


async def test_requests_not_marked_safe_wait_for_the_handshake(
    fakes: Fakes, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(transport=_transport(fakes, tmp_path)) as client:
        await _chat(client, fakes.url)
    resumed = _transport(fakes, tmp_path)
    async with httpx.AsyncClient(transport=resumed) as client:
        await _chat(client, fakes.url)  # e.g. a token request: never replayable
    assert not fakes.h3.requests[1].early and fakes.h3.requests[1].resumed
    assert resumed.early_data_sent == 0 and resumed.resumed == 1


async def test_rejected_early_data_is_resent_at_1rtt_with_one_answer(
    fakes: Fakes, tmp_path: Path
) -> None:
    fakes.openai.script.default = Reply(text="once")
    async with httpx.AsyncClient(transport=_transport(fakes, tmp_path)) as client:
        await _chat(client, fakes.url)
    fakes.h3.reject_early_data = True
    second = _transport(fakes, tmp_path)
    async with httpx.AsyncClient(transport=second) as client:
        r = await _chat(client, fakes.url, extensions=SAFE)
    assert _text(r.content) == "once"
    assert [q.early for q in fakes.h3.requests] == [False, False]  # the 0-RTT copy was dropped
    assert (second.early_data_sent, second.early_data_accepted) == (1, 0)
    assert not second.last_used_0rtt


async def test_too_early_is_retried_once_after_the_handshake(fakes: Fakes, tmp_path: Path) -> None:
    fakes.openai.script.default = Reply(text="patience")
    async with httpx.AsyncClient(transport=_transport(fakes, tmp_path)) as client:
        await _chat(client, fakes.url)
    fakes.h3.too_early = True
    async with httpx.AsyncClient(transport=_transport(fakes, tmp_path)) as client:
        r = await _chat(client, fakes.url, extensions=SAFE)
    assert r.status_code == 200 and _text(r.content) == "patience"
    assert [q.early for q in fakes.h3.requests[1:]] == [True, False]


async def test_connection_dropped_mid_stream_raises_a_transport_error(fakes: Fakes) -> None:
    fakes.openai.script.queue(Reply(text="x" * 400, chunk_size=10, chunk_delay=0.01))
    fakes.h3.drop_after_bytes = 300
    async with (
        httpx.AsyncClient(transport=_transport(fakes)) as client,
        client.stream("POST", fakes.url + "/v1/chat/completions", headers=KEY, json=CHAT) as r,
    ):
        assert r.status_code == 200
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            async for _ in r.aiter_raw():
                pass


async def test_untrusted_certificate_is_refused_unless_the_ca_file_trusts_it(
    fakes: Fakes,
) -> None:
    async with httpx.AsyncClient(transport=H3Transport(QuicOptions())) as client:
        with pytest.raises(httpx.ConnectError):
            await _chat(client, fakes.url)
    async with httpx.AsyncClient(transport=_transport(fakes)) as client:
        assert (await _chat(client, fakes.url)).status_code == 200


async def test_ticket_file_is_private_and_expired_tickets_are_dropped(
    fakes: Fakes, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(transport=_transport(fakes, tmp_path)) as client:
        await _chat(client, fakes.url)
    path = tmp_path / TICKETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(TicketStore(tmp_path)) == 1
    stored = json.loads(path.read_text())
    for ticket in stored.values():
        ticket["not_valid_after"] = time.time() - 1
    path.write_text(json.dumps(stored))
    assert len(TicketStore(tmp_path)) == 0
    assert json.loads(path.read_text()) == {}  # rewritten without them


async def test_handshake_to_a_closed_udp_port_fails_fast() -> None:
    started = time.perf_counter()
    async with httpx.AsyncClient(transport=H3Transport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"https://127.0.0.1:{_closed_udp_port()}/")
    assert time.perf_counter() - started < 2


# AutoTransport: discovery over HTTP/2, choice and fallback.


class Pair:
    """An HTTP/2 fake advertising `Alt-Svc: h3=":<udp port>"`, one CA file trusting both."""

    def __init__(self, tmp: Path, h3_port: int | None = None) -> None:
        self.fakes = Fakes()
        self.fakes.h3.start()
        port = self.fakes.h3.port if h3_port is None else h3_port
        self.tcp = FakeServer(AltSvc(self.fakes.openai, port), tls=True).start()
        self.ca_file = write_bundle(tmp / "ca.pem", self.tcp.ca_file, self.fakes.h3.ca_file)
        self.fakes.openai.script.default = Reply(text="either way")

    def auto(self, tmp: Path, mode: str = "auto", head_start: float = 1.0) -> AutoTransport:
        tcp = httpx.AsyncHTTPTransport(
            http2=True, verify=ssl.create_default_context(cafile=self.ca_file)
        )
        quic = QuicOptions(cafile=self.ca_file, state_dir=tmp)
        return AutoTransport(tcp, mode=mode, quic=quic, head_start=head_start)

    def stop(self) -> None:
        self.tcp.stop()
        self.fakes.h3.stop()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    pair = Pair(tmp_path)
    yield pair
    pair.stop()


@pytest.fixture
def blocked_pair(tmp_path: Path) -> Iterator[Pair]:
    pair = Pair(tmp_path, h3_port=_closed_udp_port())
    yield pair
    pair.stop()


async def test_alt_svc_from_http2_moves_the_next_request_to_http3(
    pair: Pair, tmp_path: Path
) -> None:
    auto = pair.auto(tmp_path)
    async with httpx.AsyncClient(transport=auto) as client:
        first = await _chat(client, pair.tcp.base_url)
        second = await _chat(client, pair.tcp.base_url)
    assert (first.http_version, second.http_version) == ("HTTP/2", "HTTP/3")
    assert _text(second.content) == "either way"
    assert len(pair.fakes.h3.requests) == 1
    origin = origin_of(httpx.URL(pair.tcp.base_url))
    status = auto.snapshot()["origins"][origin]
    assert status["protocol"] == "HTTP/3" and status["handshakes"] == 1
    # Discovery persists: a new process starts from what this one learned.
    assert AltSvcCache(tmp_path).lookup(origin) == ("127.0.0.1", pair.fakes.h3.port)


async def test_a_new_process_reaches_a_known_h3_origin_in_0rtt(pair: Pair, tmp_path: Path) -> None:
    async with httpx.AsyncClient(transport=pair.auto(tmp_path)) as client:
        await _chat(client, pair.tcp.base_url)
        await _chat(client, pair.tcp.base_url)
    fresh = pair.auto(tmp_path)
    async with httpx.AsyncClient(transport=fresh) as client:
        r = await _chat(client, pair.tcp.base_url, extensions=SAFE)
    assert r.http_version == "HTTP/3" and pair.fakes.h3.requests[-1].early
    origin = origin_of(httpx.URL(pair.tcp.base_url))
    assert fresh.snapshot()["origins"][origin]["lastUsed0rtt"] is True


async def test_closed_udp_port_falls_back_to_tcp_without_waiting_again(
    blocked_pair: Pair, tmp_path: Path
) -> None:
    auto = blocked_pair.auto(tmp_path, head_start=1.0)
    async with httpx.AsyncClient(transport=auto) as client:
        learned = await _chat(client, blocked_pair.tcp.base_url)
        started = time.perf_counter()
        tried = await _chat(client, blocked_pair.tcp.base_url)
        first_fallback = time.perf_counter() - started
        started = time.perf_counter()
        again = await _chat(client, blocked_pair.tcp.base_url)
        second_fallback = time.perf_counter() - started
    assert {r.http_version for r in (learned, tried, again)} == {"HTTP/2"}
    assert _text(again.content) == "either way"
    # The refused handshake ends the race at once, and is remembered.
    assert first_fallback < 0.9 and second_fallback < 0.5
    assert auto.altsvc.broken(origin_of(httpx.URL(blocked_pair.tcp.base_url)))
    assert auto.h3.handshakes == 0


async def test_http3_mode_with_nothing_listening_is_a_connect_error(tmp_path: Path) -> None:
    auto = AutoTransport(
        httpx.AsyncHTTPTransport(), mode="http3", quic=QuicOptions(state_dir=tmp_path)
    )
    async with httpx.AsyncClient(transport=auto) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"https://127.0.0.1:{_closed_udp_port()}/v1/models")


async def test_http2_mode_never_tries_quic(pair: Pair, tmp_path: Path) -> None:
    auto = pair.auto(tmp_path, mode="http2")
    async with httpx.AsyncClient(transport=auto) as client:
        versions = [(await _chat(client, pair.tcp.base_url)).http_version for _ in range(2)]
    assert versions == ["HTTP/2", "HTTP/2"]
    assert auto._h3 is None and not pair.fakes.h3.requests


async def test_keepalive_pings_keep_an_idle_connection_open(fakes: Fakes) -> None:
    transport = _transport(fakes, max_idle_timeout=0.6)
    async with httpx.AsyncClient(transport=transport) as client:
        await _chat(client, fakes.url)
        await asyncio.sleep(1.5)  # well past the idle timeout
        await _chat(client, fakes.url)
    assert transport.handshakes == 1


async def test_without_keepalive_an_idle_connection_times_out(fakes: Fakes) -> None:
    transport = _transport(fakes, max_idle_timeout=0.6, keepalive_expiry=0.0)
    async with httpx.AsyncClient(transport=transport) as client:
        await _chat(client, fakes.url)
        await asyncio.sleep(1.5)
        await _chat(client, fakes.url)
    assert transport.handshakes == 2 and transport.resumed == 1


def _black_hole(port: int) -> socket.socket:
    """A UDP socket that swallows datagrams: QUIC sees neither an answer nor a refusal."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    return sock


async def test_silent_udp_costs_one_head_start_then_nothing(tmp_path: Path) -> None:
    hole = _black_hole(0)
    pair = Pair(tmp_path, h3_port=hole.getsockname()[1])
    try:
        auto = pair.auto(tmp_path, head_start=0.3)
        async with httpx.AsyncClient(transport=auto) as client:
            await _chat(client, pair.tcp.base_url)  # learns the (silent) h3 endpoint
            timings = []
            for _ in range(2):
                started = time.perf_counter()
                r = await _chat(client, pair.tcp.base_url)
                timings.append(time.perf_counter() - started)
                assert r.http_version == "HTTP/2"
    finally:
        pair.stop()
        hole.close()
    assert 0.3 <= timings[0] < 1.0
    assert timings[1] < 0.2  # the handshake still pending in the background is not waited for


async def test_early_data_to_a_vanished_h3_server_is_answered_over_tcp(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    try:
        async with httpx.AsyncClient(transport=pair.auto(tmp_path)) as client:
            await _chat(client, pair.tcp.base_url)
            await _chat(client, pair.tcp.base_url)  # HTTP/3: a ticket is stored
        port = pair.fakes.h3.port
        pair.fakes.h3.stop()
        hole = _black_hole(port)
        try:
            fresh = pair.auto(tmp_path, head_start=0.2)
            async with httpx.AsyncClient(transport=fresh) as client:
                started = time.perf_counter()
                r = await _chat(client, pair.tcp.base_url, extensions=SAFE)
                elapsed = time.perf_counter() - started
        finally:
            hole.close()
    finally:
        pair.tcp.stop()
    assert r.http_version == "HTTP/2" and _text(r.content) == "either way"
    assert fresh.h3.early_data_sent == 1 and elapsed < 1.0


async def test_transport_for_follows_the_http_settings(tmp_path: Path) -> None:
    from reaper_lsp.config import HttpSettings, QuicSettings, TlsSettings
    from reaper_lsp.net.auto import transport_for

    http = HttpSettings(
        protocol="auto",
        connect_timeout=2500,
        quic=QuicSettings(enable_0rtt=False, max_idle_timeout=42.0),
        tls=TlsSettings(ca_file="/etc/ca.pem", min_version="tls_1_3"),
    )
    auto = transport_for(http, verify=False, state_dir=tmp_path)
    assert auto.mode == "auto"
    assert auto.quic == QuicOptions(
        verify=True,
        cafile="/etc/ca.pem",
        min_version="tls_1_3",
        enable_0rtt=False,
        max_idle_timeout=42.0,
        keepalive_expiry=http.pool.idle_timeout,
        connect_timeout=2.5,
        state_dir=tmp_path,
    )
    await auto.aclose()
    with pytest.raises(ValueError):
        transport_for(HttpSettings(protocol="http4"), verify=False, state_dir=None)


def _unread(response: httpx.Response) -> int:
    """Bytes that arrived for `response` and wait for its reader."""
    stream = response.stream._stream._stream  # type: ignore[attr-defined]  # httpx's wrapper, our Body
    return sum(len(chunk) for chunk in stream.chunks)


@pytest.mark.parametrize("window", [64 * 1024, 8 << 20])
async def test_an_unread_response_runs_at_most_one_window_ahead(fakes: Fakes, window: int) -> None:
    size = 1 << 20
    fakes.openai.script.queue(Reply(body=b"x" * size))
    transport = _transport(fakes, receive_window=window)
    url = fakes.url + "/v1/chat/completions"
    async with (
        httpx.AsyncClient(transport=transport) as client,
        client.stream("POST", url, headers=KEY) as r,
    ):
        await asyncio.sleep(0.5)  # the reader dawdles
        unread = _unread(r)
        body = await r.aread()
    assert len(body) == size
    if window < size:
        assert 0 < unread <= window
    else:  # the control: with room to spare the server does run ahead of a slow reader
        assert unread > 64 * 1024


# A QUIC endpoint that completes the handshake and then never answers.


async def _never_answer(scope: dict[str, object], receive: object, send: object) -> None:
    """ASGI: read the request, then say nothing until the client goes away."""
    while (await receive())["type"] != "http.disconnect":  # type: ignore[operator]
        pass


class SilentPair:
    """An HTTP/2 fake advertising an HTTP/3 fake whose handshakes succeed but whose requests
    are never answered."""

    def __init__(self, tmp: Path) -> None:
        self.silent = H3FakeServer(Routes({"/v1/": _never_answer})).start()
        self.openai = openai.create_app()
        self.openai.script.default = Reply(text="either way")
        self.tcp = FakeServer(AltSvc(self.openai, self.silent.port), tls=True).start()
        self.ca_file = write_bundle(tmp / "ca.pem", self.tcp.ca_file, self.silent.ca_file)
        self.origin = origin_of(httpx.URL(self.tcp.base_url))

    def auto(self, tmp: Path, **kwargs: float) -> AutoTransport:
        tcp = httpx.AsyncHTTPTransport(
            http2=True, verify=ssl.create_default_context(cafile=self.ca_file)
        )
        return AutoTransport(tcp, quic=QuicOptions(cafile=self.ca_file, state_dir=tmp), **kwargs)

    def stop(self) -> None:
        self.tcp.stop()
        self.silent.stop()


@pytest.fixture
def silent_pair(tmp_path: Path) -> Iterator[SilentPair]:
    pair = SilentPair(tmp_path)
    yield pair
    pair.stop()


async def test_a_silent_quic_endpoint_hands_replay_safe_requests_to_tcp_and_is_remembered(
    silent_pair: SilentPair, tmp_path: Path
) -> None:
    auto = silent_pair.auto(tmp_path, stall_after=0.5)
    url = silent_pair.tcp.base_url
    async with httpx.AsyncClient(transport=auto) as client:
        await _chat(client, url)  # over HTTP/2: learns the h3 endpoint
        started = time.perf_counter()
        rescued = await _chat(client, url, extensions=SAFE)
        rescued_in = time.perf_counter() - started
        started = time.perf_counter()
        after = await _chat(client, url, extensions=SAFE)
        after_in = time.perf_counter() - started
    assert [r.method for r in silent_pair.silent.requests] == ["POST"]  # QUIC got one try
    assert (rescued.http_version, after.http_version) == ("HTTP/2", "HTTP/2")
    assert _text(rescued.content) == "either way"
    assert rescued_in < 2.5 and after_in < 0.5
    assert AltSvcCache(tmp_path).broken(silent_pair.origin)  # a restart remembers it
    assert silent_pair.silent.requests[0].reset.wait(5)  # the abandoned stream was reset


async def test_a_silent_quic_endpoint_is_marked_broken_when_a_request_times_out(
    silent_pair: SilentPair, tmp_path: Path
) -> None:
    auto = silent_pair.auto(tmp_path, stall_after=0.5)
    url = silent_pair.tcp.base_url
    async with httpx.AsyncClient(transport=auto) as client:
        await _chat(client, url)
        # Not replay-safe (no EARLY_DATA, a POST): never sent twice, so it waits for QUIC.
        with pytest.raises(httpx.ReadTimeout):
            await _chat(client, url, timeout=httpx.Timeout(5.0, read=1.0))
        after = await _chat(client, url)
    assert after.http_version == "HTTP/2"
    assert len(silent_pair.silent.requests) == 1
    assert AltSvcCache(tmp_path).broken(silent_pair.origin)


async def test_a_slow_endpoint_that_has_answered_is_not_asked_twice(
    pair: Pair, tmp_path: Path
) -> None:
    tcp = httpx.AsyncHTTPTransport(
        http2=True, verify=ssl.create_default_context(cafile=pair.ca_file)
    )
    quic = QuicOptions(cafile=pair.ca_file, state_dir=tmp_path)
    auto = AutoTransport(tcp, quic=quic, stall_after=0.3)
    async with httpx.AsyncClient(transport=auto) as client:
        await _chat(client, pair.tcp.base_url)
        assert (await _chat(client, pair.tcp.base_url, extensions=SAFE)).http_version == "HTTP/3"
        pair.fakes.openai.script.queue(Reply(text="slowly", first_byte_delay=1.0))
        slow = await _chat(client, pair.tcp.base_url, extensions=SAFE)
    assert slow.http_version == "HTTP/3" and _text(slow.content) == "slowly"
    versions = [r.http_version for r in pair.fakes.openai.script.requests]
    assert versions == ["2", "3", "3"]  # no copy of the slow request went over TCP
    assert not auto.altsvc.broken(origin_of(httpx.URL(pair.tcp.base_url)))
