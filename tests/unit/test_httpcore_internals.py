"""The httpcore internals keep-alive and stream reset rely on, checked on a real HTTP/2
connection to a local server: this fails when the installed httpcore changes shape or leaves
the range `httpcore_internals` was checked against."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpcore
import httpx
import pytest

from reaper_lsp.net import h2reset, keepalive
from reaper_lsp.net import httpcore_internals as internals
from tests.fakes import openai
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

KEY = {"authorization": "Bearer sk-test"}


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(openai.create_app(), tls=True) as fake:
        fake.script.default = Reply(text="ok")
        yield fake


@pytest.fixture
async def client(server: FakeServer) -> AsyncIterator[httpx.AsyncClient]:
    context = ssl.create_default_context(cafile=server.ca_file)
    async with httpx.AsyncClient(http2=True, verify=context) as client:
        yield client


def _url(server: FakeServer) -> str:
    return server.base_url + "/v1/chat/completions"


def _find(root: object, kind: type, depth: int = 5) -> Any | None:
    """The first object of `kind` reachable from `root` through instance attributes (test-only:
    finds httpcore's byte stream inside httpx's wrappers without naming them)."""
    if isinstance(root, kind):
        return root
    if depth == 0 or not hasattr(root, "__dict__"):
        return None
    for value in vars(root).values():
        found = _find(value, kind, depth - 1)
        if found is not None:
            return found
    return None


def _missing(obj: object, kind: str) -> list[str]:
    return [f"{kind}.{name}" for name in internals.RELIES_ON[kind] if not hasattr(obj, name)]


def test_the_installed_httpcore_is_in_the_supported_range() -> None:
    assert internals.supported(httpcore.__version__), (
        f"httpcore {httpcore.__version__} is outside {internals.SUPPORTED}: check the shapes "
        "listed in reaper_lsp/net/httpcore_internals.py against it, then widen the range"
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.0.0", True), ("1.0.9", True), ("1.0.10rc1", True), ("1.1.0", False), ("0.18.0", False),
     ("2.0", False), ("garbage", False)],
)  # fmt: skip
def test_supported_range_reads_versions(version: str, expected: bool) -> None:
    assert internals.supported(version) is expected


async def test_every_private_name_relied_on_exists_on_a_real_http2_connection(
    server: FakeServer, client: httpx.AsyncClient
) -> None:
    from httpcore._async.http2 import HTTP2ConnectionByteStream

    server.script.queue(Reply(text="partial", hold_open=True))
    async with client.stream("POST", _url(server), headers=KEY, json={"stream": True}) as r:
        assert r.http_version == "HTTP/2"
        byte_stream = _find(r.stream, HTTP2ConnectionByteStream)
        assert byte_stream is not None, "httpx no longer wraps httpcore's HTTP/2 byte stream"
        missing = _missing(byte_stream, "HTTP2ConnectionByteStream")
        transport = client._transport
        missing += _missing(transport, "httpx.AsyncHTTPTransport")
        pool = transport._pool  # type: ignore[attr-defined]
        missing += _missing(pool, "httpcore.AsyncConnectionPool")
        [conn] = pool.connections
        missing += _missing(conn, "httpcore.AsyncHTTPConnection")
        inner = conn._connection
        assert isinstance(inner, httpcore.AsyncHTTP2Connection)
        missing += _missing(inner, "httpcore.AsyncHTTP2Connection")
        assert byte_stream._connection is inner
    assert not missing, f"httpcore {httpcore.__version__} lacks {missing}"


async def test_an_idle_connection_is_found_aged_pinged_and_closed(
    server: FakeServer, client: httpx.AsyncClient
) -> None:
    url = _url(server)
    await client.post(url, headers=KEY, json={"stream": True})
    [conn] = internals.connections(client)
    assert internals.serves(conn, httpx.URL(url))
    assert not internals.serves(conn, httpx.URL("https://elsewhere.example:443/"))
    assert keepalive.open_connections(client, url) == 1
    idle = internals.idle_seconds(conn, httpx.URL(url))
    assert idle is not None and 0 <= idle < 5
    assert await keepalive.ping(client, url) == 1
    await client.post(url, headers=KEY, json={"stream": True})  # the PING left it usable
    assert server.connections_opened == 1
    await asyncio.sleep(0.05)
    assert await keepalive.close_stale(client, url, idle_for=60) == 0
    assert await keepalive.close_stale(client, url, idle_for=0.01) == 1
    assert keepalive.open_connections(client, url) == 0


async def test_closing_an_unfinished_response_resets_its_stream_only(
    server: FakeServer, client: httpx.AsyncClient
) -> None:
    h2reset.install()
    resets: list[int] = []
    original = internals.reset_h2_stream

    async def spy(connection: Any, stream_id: int, request: Any, code: int) -> None:
        stream = connection._h2_state.streams.get(stream_id)
        if stream is not None and not stream.closed:
            resets.append(stream_id)
        await original(connection, stream_id, request, code)

    server.script.queue(Reply(text="partial", hold_open=True))
    url = _url(server)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(internals, "reset_h2_stream", spy)
        async with client.stream("POST", url, headers=KEY, json={"stream": True}) as r:
            async for _ in r.aiter_raw():
                break
        finished = await client.post(url, headers=KEY, json={"stream": True})  # no reset
    assert resets == [1] and finished.status_code == 200
    held = server.script.requests[0]
    assert await asyncio.to_thread(held.disconnected.wait, 5)
    assert not held.completed.is_set()
    assert server.connections_opened == 1
